<?php
/**
 * WHMCS server (provisioning) module for wispanel-bridge.
 *
 * The WHMCS server record is the bridge: hostname (and port) = the bridge's API,
 * password = BRIDGE_INTAKE_SECRET, access hash = an optional admin token of role
 * `operate` (enables "Retry provisioning"). Every lifecycle call becomes one signed
 * bridge order; the module waits a short, configurable time for it and answers
 * "success" when it completed, the bridge's error text when it failed, and "success"
 * (recorded as in progress) when it is still running: the bridge's signed callback
 * to callback.php then updates the service. PHP 8.1+, no Composer dependencies.
 */

declare(strict_types=1);

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/BridgeApi.php';
require_once __DIR__ . '/lib/Store.php';

use WispanelBridge\BridgeApi;
use WispanelBridge\BridgeError;
use WispanelBridge\Store;

const WISPANELBRIDGE_DEFAULT_WAIT_SECONDS = 8;
if (!defined('WISPANELBRIDGE_USAGE_PER_PAGE')) {
    define('WISPANELBRIDGE_USAGE_PER_PAGE', 500); // the bridge's maximum
}

function wispanelbridge_MetaData(): array
{
    return [
        'DisplayName' => 'WisPanel Bridge',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultNonSSLPort' => '8000',
        'DefaultSSLPort' => '443',
        'ServiceSingleSignOnLabel' => 'Log in to WisPanel',
    ];
}

/** Product settings: configoption1..5 in this order. */
function wispanelbridge_ConfigOptions(): array
{
    return [
        'Package' => [
            'Type' => 'text',
            'Size' => '32',
            'Default' => 'default',
            'Description' => 'WisPanel package of the account',
            'Loader' => 'wispanelbridge_PackageLoader',
            'SimpleMode' => true,
        ],
        'SSL certificate' => [
            'Type' => 'yesno',
            'Description' => 'Issue a certificate for the domain',
            'SimpleMode' => true,
        ],
        'Mailboxes' => [
            'Type' => 'text',
            'Size' => '40',
            'Description' => 'Comma-separated local parts created with the account '
                . '(e.g. info,sales), with the service password',
            'SimpleMode' => true,
        ],
        'Server group' => [
            'Type' => 'text',
            'Size' => '32',
            'Description' => 'Bridge server group to place new accounts in (empty: any)',
            'SimpleMode' => true,
        ],
        'Wait seconds' => [
            'Type' => 'text',
            'Size' => '4',
            'Default' => (string) WISPANELBRIDGE_DEFAULT_WAIT_SECONDS,
            'Description' => 'How long a module command waits for the bridge to finish '
                . '(then it reports success and the callback settles the outcome)',
        ],
    ];
}

/**
 * WHMCS "Loader" for the Package option: the names of the bridge's cached package
 * list (GET /v1/packages?group=G) for the product's server group, or the bridge's
 * `default` group when none is set (WHMCS may call loaders without product values).
 * Throwing is the Loader convention for "no list": WHMCS then shows the error and
 * keeps the plain text field, so a product can still be saved with a typed name.
 */
function wispanelbridge_PackageLoader(array $params): array
{
    $api = BridgeApi::fromParams($params);
    $group = trim((string) ($params['configoption4'] ?? '')) ?: 'default';
    [$status, $answer] = $api->signed('GET', '/v1/packages?group=' . rawurlencode($group));
    if ($status === 404) {
        throw new Exception("The bridge has no active server in group '$group'; type the package name");
    }
    if ($status !== 200) {
        throw new Exception(BridgeApi::describe($status, $answer));
    }
    $names = [];
    foreach ($answer['packages'] ?? [] as $package) {
        $name = is_array($package) ? (string) ($package['name'] ?? '') : '';
        if ($name !== '') {
            $names[$name] = $name;
        }
    }
    if ($names === []) {
        throw new Exception("The bridge has not read the package list of group '$group' yet "
            . '(bridge servers test NAME reads it); type the package name');
    }
    ksort($names);
    return $names;
}

/** Signed GET of an unknown service: 404 proves the URL and the secret. */
function wispanelbridge_TestConnection(array $params): array
{
    try {
        [$status, $answer] = BridgeApi::fromParams($params)->signed('GET', '/v1/services/whmcs-connection-test');
    } catch (Throwable $exc) {
        return ['success' => false, 'error' => $exc->getMessage()];
    }
    if ($status === 404) {
        return ['success' => true, 'error' => ''];
    }
    if ($status === 401) {
        return ['success' => false, 'error' => 'The bridge refused the signature: check the password (intake secret) and this server\'s clock'];
    }
    return ['success' => false, 'error' => BridgeApi::describe($status, $answer)];
}

function wispanelbridge_CreateAccount(array $params): string
{
    $order = wispanelbridge_order_base($params, 'create') + [
        'account' => [
            'username' => (string) $params['username'],
            'email' => (string) ($params['clientsdetails']['email'] ?? ''),
            'password' => (string) $params['password'],
            'package' => wispanelbridge_package($params),
        ],
    ];
    $domain = strtolower(trim((string) ($params['domain'] ?? '')));
    if ($domain !== '') {
        $order['domain'] = $domain;
        $order['ssl'] = wispanelbridge_yes($params['configoption2'] ?? '');
        $mailboxes = [];
        foreach (explode(',', (string) ($params['configoption3'] ?? '')) as $localPart) {
            $localPart = strtolower(trim($localPart));
            if ($localPart !== '') {
                $mailboxes[] = ['local_part' => $localPart, 'password' => (string) $params['password']];
            }
        }
        $order['mailboxes'] = $mailboxes;
    }
    $group = trim((string) ($params['configoption4'] ?? ''));
    if ($group !== '') {
        $order['server_group'] = $group;
    }
    return wispanelbridge_run($params, $order);
}

/** WHMCS's automatic suspension says "Overdue on Payment"; that is non-payment. */
function wispanelbridge_suspend_reason(string $whmcsReason): string
{
    $reason = strtolower($whmcsReason);
    if (str_contains($reason, 'overdue')) {
        return 'non_payment';
    }
    return str_contains($reason, 'abuse') ? 'abuse' : 'other';
}

function wispanelbridge_SuspendAccount(array $params): string
{
    $order = wispanelbridge_order_base($params, 'suspend');
    $order['reason'] = wispanelbridge_suspend_reason((string) ($params['suspendreason'] ?? ''));
    return wispanelbridge_run($params, $order);
}

function wispanelbridge_UnsuspendAccount(array $params): string
{
    return wispanelbridge_run($params, wispanelbridge_order_base($params, 'unsuspend'));
}

function wispanelbridge_TerminateAccount(array $params): string
{
    return wispanelbridge_run($params, wispanelbridge_order_base($params, 'terminate'));
}

function wispanelbridge_ChangePackage(array $params): string
{
    $order = wispanelbridge_order_base($params, 'change_package');
    $order['package'] = wispanelbridge_package($params);
    return wispanelbridge_run($params, $order);
}

function wispanelbridge_ChangePassword(array $params): string
{
    $order = wispanelbridge_order_base($params, 'change_password');
    $order['password'] = (string) $params['password'];
    return wispanelbridge_run($params, $order);
}

/**
 * Report the payment: a service suspended for non-payment gets unsuspended. The
 * bridge names the unsuspend it creates `payment:unsuspend:<service>:<paid_until
 * after the payment>` (never earlier than the paid_until it holds), so the module
 * knows the order_id before posting and records it first, as every other command
 * does: the unsuspend's callback can come before the payment's answer, and a
 * posting recorded after that callback would stay unsettled.
 */
function wispanelbridge_Renew(array $params): string
{
    $paidUntil = wispanelbridge_next_due_date($params);
    if ($paidUntil === null) {
        return 'No next due date on the service';
    }
    $serviceId = (int) $params['serviceid'];
    $target = '/v1/services/' . rawurlencode(wispanelbridge_service_id($params));
    try {
        $api = BridgeApi::fromParams($params);
        [$status, $answer] = $api->signed('GET', $target);
        if ($status !== 200) {
            return BridgeApi::describe($status, $answer);
        }
        $held = (string) ($answer['service']['paid_until'] ?? '');
        $orderId = wispanelbridge_payment_order_id($serviceId, max($held, $paidUntil));
        $before = Store::posted($orderId);
        Store::recordPosting($serviceId, $orderId, 'unsuspend', wispanelbridge_whmcs_status($serviceId));
        try {
            [$status, $answer] = $api->signed('POST', $target . '/payments', ['paid_until' => $paidUntil]);
        } catch (Throwable $exc) {
            wispanelbridge_withdraw_posting($orderId, $before);
            throw $exc;
        }
        logModuleCall('wispanelbridge', 'Renew', ['paid_until' => $paidUntil], $answer);
        $order = $status === 200 && !empty($answer['order']) ? $answer['order'] : null;
        if ($order === null || (string) $order['order_id'] !== $orderId) {
            wispanelbridge_withdraw_posting($orderId, $before); // no such order came of it
        }
        if ($status !== 200) {
            return BridgeApi::describe($status, $answer);
        }
        if ($order !== null) {
            if ((string) $order['order_id'] !== $orderId) {
                // Another payment moved paid_until between the GET and the POST.
                Store::recordPosting($serviceId, (string) $order['order_id'], (string) $order['action'], wispanelbridge_whmcs_status($serviceId), (string) $order['status']);
            }
            wispanelbridge_record_outcome($api, $serviceId, $order);
        }
    } catch (Throwable $exc) {
        return $exc->getMessage();
    }
    return 'success';
}

/** The bridge's order_id of the unsuspend a payment creates (bridge/domain/dues.py). */
function wispanelbridge_payment_order_id(int $serviceId, string $paidUntil): string
{
    return 'payment:unsuspend:' . $serviceId . ':' . $paidUntil;
}

/**
 * Undo a posting recorded before a request that created no order: put the row back
 * as it was (deleted if it was new). A row a callback has settled meanwhile stays.
 */
function wispanelbridge_withdraw_posting(string $orderId, ?array $before): void
{
    $now = Store::posted($orderId);
    if ($now !== null && !in_array($now['status'], Store::FINAL, true)) {
        Store::restorePosting($orderId, $before);
    }
}

/**
 * Keep the module's word on an order the bridge answered: the admin tab's and client
 * area's order row, and the posting's status. When the order's callback has already
 * settled the posting while the answer still says "running", the callback came
 * first: the bridge has the outcome, so read it rather than record a stale status.
 * Returns the order as recorded.
 */
function wispanelbridge_record_outcome(BridgeApi $api, int $serviceId, array $order): array
{
    $posted = Store::posted((string) $order['order_id']);
    if (!in_array($order['status'], Store::FINAL, true) && $posted !== null
        && in_array($posted['status'], Store::FINAL, true)) {
        try {
            $order = $api->getOrder((string) $order['id']);
        } catch (Throwable) {
            // Unreachable now: record the answer; the admin tab refreshes it later.
        }
    }
    Store::recordOrder($serviceId, $order);
    Store::settlePosting((string) $order['order_id'], (string) $order['status']);
    return $order;
}

/**
 * One-click login into the account's panel: the bridge mints a single-use link
 * (POST /v1/services/{id}/sso) and WHMCS redirects the browser to it. WHMCS's SSO
 * convention: ['success' => true, 'redirectTo' => url] or ['success' => false,
 * 'errorMsg' => text]. The link is a credential: it is never logged.
 */
function wispanelbridge_ServiceSingleSignOn(array $params): array
{
    $target = '/v1/services/' . rawurlencode(wispanelbridge_service_id($params)) . '/sso';
    try {
        [$status, $answer] = BridgeApi::fromParams($params)->signed('POST', $target);
    } catch (Throwable $exc) {
        return ['success' => false, 'errorMsg' => $exc->getMessage()];
    }
    if ($status === 200 && is_string($answer['url'] ?? null) && $answer['url'] !== '') {
        return ['success' => true, 'redirectTo' => $answer['url']];
    }
    $detail = is_string($answer['detail'] ?? null) ? $answer['detail'] : '';
    $error = match ($status) {
        404 => 'The bridge does not know this service (not provisioned yet)',
        409 => 'Panel login is not available for this service: ' . $detail,
        503 => 'The panel cannot log you in right now (' . $detail . '); try again in a minute',
        502 => 'The panel could not log you in: ' . $detail,
        default => BridgeApi::describe($status, $answer),
    };
    logModuleCall('wispanelbridge', 'ServiceSingleSignOn', $target, ['status' => $status, 'detail' => $detail]);
    return ['success' => false, 'errorMsg' => $error];
}

/**
 * Disk and bandwidth of every service on this bridge: GET /v1/usage page by page
 * (meta.last_page), written to tblhosting's diskusage and bwusage (MB, as WHMCS
 * keeps them). The bridge reports no limits, so disklimit/bwlimit are left as the
 * product set them (writing 0 would read as "unlimited").
 */
function wispanelbridge_UsageUpdate(array $params): string
{
    try {
        $api = BridgeApi::fromParams($params);
        $page = 1;
        do {
            [$status, $answer] = $api->signed('GET', '/v1/usage?page=' . $page . '&per_page=' . WISPANELBRIDGE_USAGE_PER_PAGE);
            if ($status !== 200) {
                return BridgeApi::describe($status, $answer);
            }
            foreach ($answer['usage'] ?? [] as $usage) {
                if (is_array($usage)) {
                    wispanelbridge_store_usage((int) $params['serverid'], $usage);
                }
            }
            $lastPage = (int) ($answer['meta']['last_page'] ?? 1);
            $page++;
        } while ($page <= $lastPage && $page <= 10000);
    } catch (Throwable $exc) {
        return $exc->getMessage();
    }
    return 'success';
}

function wispanelbridge_store_usage(int $serverId, array $usage): void
{
    if (!ctype_digit((string) ($usage['service_id'] ?? ''))) {
        return; // not a WHMCS service id (an order from another billing system)
    }
    WHMCS\Database\Capsule::table('tblhosting')
        ->where('id', (int) $usage['service_id'])
        ->where('server', $serverId)
        ->update([
            'diskusage' => (int) ($usage['disk_used_mb'] ?? 0),
            'bwusage' => (int) ($usage['bandwidth_used_mb'] ?? 0),
            'lastupdate' => date('Y-m-d H:i:s'),
        ]);
}

/**
 * What the client area says about the service's last order: its state (pending,
 * failed, completed, or '' when none) and a message for the customer. Never the
 * bridge's error text: that is for the team (admin tab, module log, to-do item).
 */
function wispanelbridge_client_order_state(?array $last): array
{
    if ($last === null) {
        return ['state' => '', 'message' => ''];
    }
    $status = (string) $last['status'];
    $create = $last['action'] === 'create';
    if ($status === 'completed') {
        return ['state' => 'completed', 'message' => ''];
    }
    if ($status === 'failed' || $status === 'cancelled') {
        return ['state' => 'failed', 'message' => ($create
            ? 'Provisioning of your account failed.'
            : 'The last change to your account could not be completed.')
            . ' Our team has been notified and will take care of it.'];
    }
    return ['state' => 'pending', 'message' => $create
        ? 'Provisioning in progress: your account will be ready shortly.'
        : 'A change to your account is in progress.'];
}

/** The client area: the account as the bridge knows it, and its last order's state. */
function wispanelbridge_ClientArea(array $params): array
{
    $order = ['state' => '', 'message' => ''];
    try {
        $order = wispanelbridge_client_order_state(Store::lastOrder((int) $params['serviceid']));
    } catch (Throwable) {
        // The module's table is unreadable: show the account without the order line.
    }
    $service = null;
    $error = '';
    try {
        $target = '/v1/services/' . rawurlencode(wispanelbridge_service_id($params));
        [$status, $answer] = BridgeApi::fromParams($params)->signed('GET', $target);
        if ($status === 200) {
            $service = $answer['service'];
        } else {
            $error = $status === 404 ? 'Not provisioned yet' : 'Status unavailable';
        }
    } catch (Throwable $exc) {
        $error = 'Status unavailable';
    }
    return [
        'templatefile' => 'templates/clientarea',
        'vars' => [
            'bridgeService' => $service,
            'bridgeError' => $error,
            'bridgeOrderState' => $order['state'],
            'bridgeOrderMessage' => $order['message'],
        ],
    ];
}

/** Admin service tab: the last bridge order (refreshed), its error and the panel. */
function wispanelbridge_AdminServicesTabFields(array $params): array
{
    $last = Store::lastOrder((int) $params['serviceid']);
    if ($last === null) {
        return ['Bridge order' => 'none yet'];
    }
    try {
        $order = BridgeApi::fromParams($params)->getOrder((string) $last['order_uuid']);
        Store::recordOrder((int) $params['serviceid'], $order);
        $last = Store::lastOrder((int) $params['serviceid']);
    } catch (Throwable $exc) {
        $last['status'] .= ' (bridge unreachable: last known)';
    }
    $esc = static fn ($value): string => htmlspecialchars((string) $value, ENT_QUOTES);
    return [
        'Bridge order' => $esc($last['action']) . ' ' . $esc($last['order_id'])
            . ' (' . $esc($last['order_uuid']) . ')',
        'Order status' => $esc($last['status']),
        'Last error' => $last['last_error'] === null ? '—' : $esc($last['last_error']),
        'Panel server' => $last['server'] === null ? '—' : $esc($last['server']),
    ];
}

/** "Retry provisioning", shown only when the server record holds an admin token. */
function wispanelbridge_AdminCustomButtonArray(array $params = []): array
{
    if ($params !== [] && trim((string) ($params['serveraccesshash'] ?? '')) === '') {
        return [];
    }
    return ['Retry provisioning' => 'RetryProvisioning'];
}

/** Retry the service's last failed order from the bridge's failed-jobs queue. */
function wispanelbridge_RetryProvisioning(array $params): string
{
    $last = Store::lastOrder((int) $params['serviceid']);
    if ($last === null) {
        return 'No bridge order recorded for this service';
    }
    try {
        $serviceId = (int) $params['serviceid'];
        $orderId = (string) $last['order_id'];
        $api = BridgeApi::fromParams($params);
        $target = '/v1/admin/orders/' . rawurlencode((string) $last['order_uuid']) . '/retry';
        // The retry runs the order now, after any other: it is the newest again
        // (recorded first: its callback may come before the wait below ends).
        $before = Store::posted($orderId);
        Store::reopenPosting($serviceId, $orderId, (string) $last['action'], wispanelbridge_whmcs_status($serviceId), 'queued');
        try {
            [$status, $answer] = $api->admin('POST', $target);
        } catch (Throwable $exc) {
            Store::restorePosting($orderId, $before);
            throw $exc;
        }
        logModuleCall('wispanelbridge', 'RetryProvisioning', $target, $answer);
        if ($status !== 200) {
            Store::restorePosting($orderId, $before);
            return BridgeApi::describe($status, $answer);
        }
        $order = $api->waitForOrder($api->getOrder((string) $last['order_uuid']), wispanelbridge_wait_seconds($params));
        $order = wispanelbridge_record_outcome($api, $serviceId, $order);
        return $order['status'] === 'failed' ? (string) $order['last_error'] : 'success';
    } catch (Throwable $exc) {
        return $exc->getMessage();
    }
}

// ---- helpers -------------------------------------------------------------------

/** The bridge's service_id of a WHMCS service: its tblhosting id. */
function wispanelbridge_service_id(array $params): string
{
    return (string) $params['serviceid'];
}

/** A new order_id per module command; a network retry of it reuses the array. */
function wispanelbridge_order_base(array $params, string $action): array
{
    return [
        'order_id' => 'whmcs-' . $params['serviceid'] . '-' . $action . '-' . bin2hex(random_bytes(6)),
        'service_id' => wispanelbridge_service_id($params),
        'action' => $action,
    ];
}

/** Submit, wait a little, and answer as WHMCS expects ("success" or the error). */
function wispanelbridge_run(array $params, array $order): string
{
    $logged = $order;
    unset($logged['account']['password'], $logged['password'], $logged['mailboxes']);
    $serviceId = (int) $params['serviceid'];
    $accepted = null;
    try {
        // Recorded before sending: the callback may come before the wait below ends.
        Store::recordPosting($serviceId, $order['order_id'], $order['action'], wispanelbridge_whmcs_status($serviceId));
        $api = BridgeApi::fromParams($params);
        try {
            $accepted = $api->submitOrder($order);
        } catch (BridgeError $exc) {
            if (!str_contains($exc->getMessage(), 'unreachable')) {
                throw $exc;
            }
            $accepted = $api->submitOrder($order); // same order_id: never a second order
        }
        $final = $api->waitForOrder($accepted, wispanelbridge_wait_seconds($params));
        $final = wispanelbridge_record_outcome($api, $serviceId, $final);
        logModuleCall('wispanelbridge', $order['action'], $logged, $final, null, [(string) $params['password']]);
    } catch (Throwable $exc) {
        if ($accepted === null) {
            wispanelbridge_forget_posting($order['order_id']);
        }
        logModuleCall('wispanelbridge', $order['action'], $logged, $exc->getMessage(), null, [(string) $params['password']]);
        return $exc->getMessage();
    }
    if ($final['status'] === 'failed' || $final['status'] === 'cancelled') {
        return (string) ($final['last_error'] ?: 'Order ' . $final['status']);
    }
    return 'success'; // completed, or still running: the callback settles it
}

/** Mark a posting the bridge never accepted, so it supersedes no other order. */
function wispanelbridge_forget_posting(string $orderId): void
{
    try {
        Store::settlePosting($orderId, Store::UNSENT);
    } catch (Throwable) {
        // The module's own table is unreachable too: nothing more to do here.
    }
}

/** The service's WHMCS status now (before an order: what a failure gives back). */
function wispanelbridge_whmcs_status(int $serviceId): ?string
{
    $status = WHMCS\Database\Capsule::table('tblhosting')->where('id', $serviceId)->value('domainstatus');
    return $status === null || $status === '' ? null : (string) $status;
}

function wispanelbridge_wait_seconds(array $params): float
{
    $value = trim((string) ($params['configoption5'] ?? ''));
    return is_numeric($value) ? max(0.0, min(60.0, (float) $value)) : WISPANELBRIDGE_DEFAULT_WAIT_SECONDS;
}

function wispanelbridge_package(array $params): string
{
    $package = trim((string) ($params['configoption1'] ?? ''));
    return $package !== '' ? $package : 'default';
}

function wispanelbridge_yes(mixed $value): bool
{
    return in_array(strtolower((string) $value), ['on', 'yes', '1', 'true'], true);
}

/** The service's next due date (Y-m-d): it is paid until then. */
function wispanelbridge_next_due_date(array $params): ?string
{
    $date = null;
    if (isset($params['model']) && is_object($params['model'])) {
        $date = $params['model']->nextduedate ?? null;
    }
    if ($date === null) {
        $date = WHMCS\Database\Capsule::table('tblhosting')->where('id', (int) $params['serviceid'])->value('nextduedate');
    }
    if ($date instanceof DateTimeInterface) {
        return $date->format('Y-m-d');
    }
    $date = substr((string) $date, 0, 10);
    return preg_match('/^\d{4}-\d{2}-\d{2}$/', $date) && $date !== '0000-00-00' ? $date : null;
}
