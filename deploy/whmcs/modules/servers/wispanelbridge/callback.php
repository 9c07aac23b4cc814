<?php
/**
 * Receiver of the bridge's signed callbacks (BRIDGE_BILLING_CALLBACK_URL =
 * https://<whmcs>/modules/servers/wispanelbridge/callback.php).
 *
 * Verifies the signature with the password of a "wispanelbridge" server record
 * (the callback secret defaults to the intake secret), refuses timestamps more
 * than 300 s off, applies each X-Bridge-Delivery once, then updates the service:
 * status (only from the newest order of the service; a failed one gives back the
 * status the service had), a module log entry, and an admin to-do item on failure.
 * After answering, it prunes the module's tables of old rows (Store::prune).
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

/**
 * The newer order that makes this callback's status stale, or null when its status
 * may be applied. An order the module posted is stale once a later one was sent
 * (callbacks may arrive out of order: a retried delivery of an old create after a
 * suspend). An order it did not post (a bridge sweep, another client) has no place
 * in that order: its status waits for any order of the service still unheard of,
 * whose own callback settles the service (one posted more than
 * Store::unsettledHours() ago no longer counts: its callback is not coming).
 */
function wispanelbridge_callback_superseded_by(int $serviceId, ?array $posted): ?array
{
    if ($posted === null) {
        return Store::unsettled($serviceId);
    }
    return Store::newerThan($serviceId, (int) $posted['sequence']);
}

/** The WHMCS status of a service now. */
function wispanelbridge_callback_whmcs_status(int $serviceId): string
{
    return (string) Capsule::table('tblhosting')->where('id', $serviceId)->value('domainstatus');
}

/**
 * The status a failed or cancelled order gives the service back, or null to leave it.
 * A create goes back to Pending. A suspend, unsuspend or terminate gets back the
 * status recorded when it was posted, and only while the service still shows what
 * WHMCS set on the module's "success" (anything else is a later change to keep,
 * or the module answered the error and WHMCS changed nothing).
 */
function wispanelbridge_callback_rollback(int $serviceId, string $action, ?array $posted): ?string
{
    if ($action === 'create') {
        return 'Pending'; // WHMCS marked it active when the module answered "still running"
    }
    $before = $posted['whmcs_status_before'] ?? null;
    $claimed = wispanelbridge_callback_status($action);
    if ($before === null || $claimed === null || $before === $claimed) {
        return null;
    }
    return wispanelbridge_callback_whmcs_status($serviceId) === $claimed ? (string) $before : null;
}

function wispanelbridge_callback_apply(int $serviceId, array $callback): void
{
    $orderId = (string) ($callback['order_id'] ?? '');
    $action = (string) $callback['action'];
    $completed = $callback['status'] === 'completed';
    $posted = Store::posted($orderId);
    $newer = wispanelbridge_callback_superseded_by($serviceId, $posted);
    Store::recordCallback($serviceId, $callback);
    if ($posted !== null) {
        Store::settlePosting($orderId, (string) $callback['status']);
    } elseif ($newer === null && $completed) {
        // Not posted by the module (a sweep): from now on the newest the module knows.
        Store::recordPosting($serviceId, $orderId, $action, wispanelbridge_callback_whmcs_status($serviceId), 'completed');
    }
    $status = null;
    if ($newer === null) {
        $status = $completed
            ? wispanelbridge_callback_status($action)
            : wispanelbridge_callback_rollback($serviceId, $action, $posted);
    }
    $outcome = $callback['status'] . ($newer === null
        ? ($status === null ? '' : '; service status ' . $status)
        : '; service status left as is: order ' . $newer['order_id'] . ' is newer');
    logModuleCall('wispanelbridge', 'callback:' . $action, $callback, $outcome);
    if ($status !== null) {
        localAPI('UpdateClientProduct', ['serviceid' => $serviceId, 'status' => $status]);
    }
    if ($completed) {
        return;
    }
    Capsule::table('tbltodolist')->insert([
        'date' => gmdate('Y-m-d'),
        'title' => 'WisPanel Bridge: ' . $action . ' ' . $callback['status']
            . ' for service #' . $serviceId,
        'description' => (string) $callback['result'] . "\nBridge order: " . $orderId
            . ($status === null ? '' : "\nThe service is back to " . $status . '.')
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
    wispanelbridge_callback_prune();
}

/**
 * Opportunistic housekeeping: old applied delivery ids and settled postings go, a
 * bounded batch per applied callback (Store::prune). A failure here is logged and
 * changes nothing about the callback, already applied and answered.
 */
function wispanelbridge_callback_prune(): void
{
    try {
        Store::prune();
    } catch (Throwable $exc) {
        logModuleCall('wispanelbridge', 'callback:prune', [], $exc->getMessage());
    }
}

wispanelbridge_callback_main();
