<?php
/**
 * Receiver of the bridge's signed callbacks (BRIDGE_BILLING_CALLBACK_URL =
 * https://<whmcs>/modules/servers/wispanelbridge/callback.php).
 *
 * Verifies the signature with the password of a "wispanelbridge" server record
 * (the callback secret defaults to the intake secret), refuses timestamps more
 * than 300 s off, applies each X-Bridge-Delivery once, then updates the service:
 * status, a module log entry, and an admin to-do item on failure.
 */

declare(strict_types=1);

require_once __DIR__ . '/../../../init.php';
require_once __DIR__ . '/lib/BridgeApi.php';
require_once __DIR__ . '/lib/Store.php';

use WHMCS\Database\Capsule;
use WispanelBridge\Store;

const WISPANELBRIDGE_MAX_SKEW_SECONDS = 300;

function wispanelbridge_callback_answer(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body);
}

/** The secrets of every bridge server record (callbacks may come from any). */
function wispanelbridge_callback_secrets(): array
{
    $secrets = [];
    foreach (Capsule::table('tblservers')->where('type', 'wispanelbridge')->get() as $server) {
        $plain = localAPI('DecryptPassword', ['password2' => (string) $server->password]);
        if (($plain['result'] ?? '') === 'success' && ($plain['password'] ?? '') !== '') {
            $secrets[] = (string) $plain['password'];
        }
    }
    return $secrets;
}

function wispanelbridge_callback_verified(string $timestamp, string $signature, string $body): bool
{
    if (!ctype_digit($timestamp) || abs(time() - (int) $timestamp) > WISPANELBRIDGE_MAX_SKEW_SECONDS) {
        return false;
    }
    foreach (wispanelbridge_callback_secrets() as $secret) {
        $expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
        if (hash_equals($expected, $signature)) {
            return true;
        }
    }
    return false;
}

/** WHMCS status a completed order leaves the service in. */
function wispanelbridge_callback_status(string $action): ?string
{
    return [
        'create' => 'Active',
        'unsuspend' => 'Active',
        'suspend' => 'Suspended',
        'terminate' => 'Terminated',
    ][$action] ?? null;
}

function wispanelbridge_callback_apply(int $serviceId, array $callback): void
{
    Store::recordCallback($serviceId, $callback);
    logModuleCall('wispanelbridge', 'callback:' . $callback['action'], $callback, $callback['status']);
    if ($callback['status'] === 'completed') {
        $status = wispanelbridge_callback_status((string) $callback['action']);
        if ($status !== null) {
            localAPI('UpdateClientProduct', ['serviceid' => $serviceId, 'status' => $status]);
        }
        return;
    }
    if ($callback['action'] === 'create') {
        // WHMCS marked it active when the module answered "still running".
        localAPI('UpdateClientProduct', ['serviceid' => $serviceId, 'status' => 'Pending']);
    }
    Capsule::table('tbltodolist')->insert([
        'date' => gmdate('Y-m-d'),
        'title' => 'WisPanel Bridge: ' . $callback['action'] . ' ' . $callback['status']
            . ' for service #' . $serviceId,
        'description' => (string) $callback['result'] . "\nBridge order: " . $callback['order_id']
            . "\nRetry it with the service's \"Retry provisioning\" button or `bridge orders retry`.",
        'admin' => 0,
        'status' => 'Pending',
        'duedate' => gmdate('Y-m-d'),
    ]);
}

function wispanelbridge_callback_main(): void
{
    if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
        wispanelbridge_callback_answer(405, ['error' => 'POST only']);
        return;
    }
    $body = (string) file_get_contents('php://input');
    $timestamp = (string) ($_SERVER['HTTP_X_BRIDGE_TIMESTAMP'] ?? '');
    $signature = (string) ($_SERVER['HTTP_X_BRIDGE_SIGNATURE'] ?? '');
    if (!wispanelbridge_callback_verified($timestamp, $signature, $body)) {
        wispanelbridge_callback_answer(401, ['error' => 'bad signature or timestamp']);
        return;
    }
    $callback = json_decode($body, true);
    $delivery = (string) ($_SERVER['HTTP_X_BRIDGE_DELIVERY'] ?? '');
    if (!is_array($callback) || !isset($callback['service_id'], $callback['action'], $callback['status'])
        || !preg_match('/^[0-9a-f-]{36}$/', $delivery)) {
        wispanelbridge_callback_answer(400, ['error' => 'not a bridge callback']);
        return;
    }
    if (!ctype_digit((string) $callback['service_id'])) {
        wispanelbridge_callback_answer(200, ['applied' => false, 'reason' => 'not a WHMCS service']);
        return;
    }
    if (!Store::claimDelivery($delivery)) {
        wispanelbridge_callback_answer(200, ['applied' => false, 'reason' => 'already applied']);
        return;
    }
    try {
        wispanelbridge_callback_apply((int) $callback['service_id'], $callback);
    } catch (Throwable $exc) {
        Store::releaseDelivery($delivery); // the bridge retries; apply it then
        logModuleCall('wispanelbridge', 'callback', $callback, $exc->getMessage());
        wispanelbridge_callback_answer(500, ['error' => 'could not apply']);
        return;
    }
    wispanelbridge_callback_answer(200, ['applied' => true]);
}

wispanelbridge_callback_main();
