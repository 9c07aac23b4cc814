<?php
/**
 * The WHMCS module against a live bridge (API, worker, demo panel) with the WHMCS
 * stand-in; tests/e2e/test_whmcs.py starts everything and runs this with phpunit.
 * BRIDGE_CLI runs the bridge's CLI as a second terminal would (`servers test`,
 * `usage sync`).
 */

declare(strict_types=1);

use PHPUnit\Framework\TestCase;
use WHMCS\Database\Capsule;
use WispanelBridge\BridgeApi;

// One usage row a page, so UsageUpdate has to follow meta.last_page.
const WISPANELBRIDGE_USAGE_PER_PAGE = 1;

require_once getenv('WHMCS_ROOT') . '/init.php';
require_once getenv('WHMCS_ROOT') . '/modules/servers/wispanelbridge/wispanelbridge.php';

final class ModuleTest extends TestCase
{
    private int $serviceId;
    private string $username;

    protected function setUp(): void
    {
        $this->serviceId = random_int(100000, 999999999);
        $this->username = 'w' . substr(bin2hex(random_bytes(8)), 0, 10);
        Capsule::table('tblhosting')->insert([
            'id' => $this->serviceId,
            'server' => 1,
            'domainstatus' => 'Pending',
            'nextduedate' => gmdate('Y-m-d', time() + 30 * 86400),
        ]);
        $this->setLicense(-1);
    }

    private function params(array $overrides = []): array
    {
        return $overrides + [
            'serviceid' => $this->serviceId,
            'serverid' => 1,
            'serverhostname' => getenv('BRIDGE_HOST'),
            'serverport' => getenv('BRIDGE_PORT'),
            'serversecure' => '',
            'serverpassword' => getenv('BRIDGE_SECRET'),
            'serveraccesshash' => getenv('BRIDGE_ADMIN_TOKEN'),
            'username' => $this->username,
            'password' => 'Whmcs-Pass-' . $this->serviceId,
            'domain' => '',
            'clientsdetails' => ['email' => $this->username . '@example.com'],
            'configoption1' => 'default',
            'configoption2' => '',
            'configoption3' => '',
            'configoption4' => '',
            'configoption5' => '30',
            'suspendreason' => '',
        ];
    }

    private static function sim(string $method, string $path, ?array $body = null): array
    {
        $curl = curl_init(getenv('SIM_URL') . $path);
        curl_setopt_array($curl, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_POSTFIELDS => $body === null ? null : json_encode($body),
            CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
        ]);
        $raw = (string) curl_exec($curl);
        curl_close($curl);
        return json_decode($raw, true);
    }

    private function setLicense(int $maxUsers): void
    {
        self::sim('POST', '/_sim/config', ['license_max_users' => $maxUsers]);
    }

    private function panelUser(): ?array
    {
        return self::sim('GET', '/_sim/state')['users'][$this->username] ?? null;
    }

    /** The status of a login on the panel's own API (the state hides passwords). */
    private static function panelLogin(string $username, string $password): int
    {
        $curl = curl_init(getenv('SIM_URL') . '/api/v1/auth/login');
        curl_setopt_array($curl, [
            CURLOPT_POST => true,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_POSTFIELDS => json_encode(['username' => $username, 'password' => $password, 'force' => true]),
            CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
        ]);
        curl_exec($curl);
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        return $status;
    }

    private function bridgeService(): array
    {
        [$status, $answer] = BridgeApi::fromParams($this->params())->signed('GET', '/v1/services/' . $this->serviceId);
        $this->assertSame(200, $status);
        return $answer['service'];
    }

    private static function state(): array
    {
        // Under the stand-in's lock: callback.php may be writing the file right now.
        return standin_transaction(fn (array &$state): array => $state);
    }

    private function waitFor(callable $check, string $what): void
    {
        $deadline = microtime(true) + 60;
        while (!$check()) {
            if (microtime(true) > $deadline) {
                $this->fail("never happened: $what");
            }
            usleep(200000);
        }
    }

    private function hostingStatus(): string
    {
        return (string) Capsule::table('tblhosting')->where('id', $this->serviceId)->value('domainstatus');
    }

    public function testMetaDataAndConfigOptionsFollowWhmcsConventions(): void
    {
        $meta = wispanelbridge_MetaData();
        $this->assertSame('1.1', $meta['APIVersion']);
        $this->assertTrue($meta['RequiresServer']);
        $this->assertArrayNotHasKey('AdminSingleSignOnLabel', $meta);
        $options = wispanelbridge_ConfigOptions();
        $this->assertSame(['Package', 'SSL certificate', 'Mailboxes', 'Server group', 'Wait seconds'], array_keys($options));
        $this->assertSame('wispanelbridge_PackageLoader', $options['Package']['Loader']);
    }

    public function testTestConnectionAcceptsTheSecretAndRefusesAnother(): void
    {
        $this->assertSame(['success' => true, 'error' => ''], wispanelbridge_TestConnection($this->params()));
        $wrong = wispanelbridge_TestConnection($this->params(['serverpassword' => 'not-the-secret']));
        $this->assertFalse($wrong['success']);
        $this->assertStringContainsString('refused the signature', $wrong['error']);
    }

    public function testCreateAccountProvisionsThePanelAndLogsNoPassword(): void
    {
        $domain = $this->username . '.example';
        $params = $this->params(['domain' => $domain, 'configoption3' => 'info']);
        $this->assertSame('success', wispanelbridge_CreateAccount($params));
        $user = $this->panelUser();
        $this->assertNotNull($user);
        $this->assertSame('default', $user['package']);
        $this->assertArrayHasKey("info@$domain", self::sim('GET', '/_sim/state')['mailboxes']);
        $this->assertSame('active', $this->bridgeService()['status']);
        $fields = wispanelbridge_AdminServicesTabFields($params);
        $this->assertSame('completed', $fields['Order status']);
        $this->assertSame('demo', $fields['Panel server']);
        $log = json_encode(self::state()['modulelog']);
        $this->assertStringContainsString('"action":"create"', $log);
        $this->assertStringNotContainsString($params['password'], $log);
        $area = wispanelbridge_ClientArea($params);
        $this->assertSame($domain, $area['vars']['bridgeService']['domain']);
        $this->assertSame(['completed', ''], [$area['vars']['bridgeOrderState'], $area['vars']['bridgeOrderMessage']]);
    }

    public function testOverdueSuspensionIsNonPaymentAndRenewLiftsIt(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $this->assertSame('success', wispanelbridge_SuspendAccount($this->params(['suspendreason' => 'Overdue on Payment'])));
        $service = $this->bridgeService();
        $this->assertSame('suspended', $service['status']);
        $this->assertSame('non_payment', $service['suspension_reason']);
        $this->assertSame('suspended', $this->panelUser()['status']);
        $paidUntil = gmdate('Y-m-d', time() + 30 * 86400);
        $model = (object) ['nextduedate' => $paidUntil];
        $this->assertSame('success', wispanelbridge_Renew($this->params(['model' => $model])));
        $this->waitFor(fn () => $this->bridgeService()['status'] === 'active', 'the payment unsuspended the service');
        $this->assertSame($paidUntil, $this->bridgeService()['paid_until']);
        $this->waitFor(fn () => $this->panelUser()['status'] === 'active', 'the panel account is active again');
    }

    public function testSuspendReasonsMapToTheBridgesWords(): void
    {
        $this->assertSame('non_payment', wispanelbridge_suspend_reason('Overdue on Payment'));
        $this->assertSame('abuse', wispanelbridge_suspend_reason('Abuse: spam'));
        $this->assertSame('other', wispanelbridge_suspend_reason(''));
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $this->assertSame('success', wispanelbridge_SuspendAccount($this->params(['suspendreason' => 'Abuse report #12'])));
        $this->assertSame('abuse', $this->bridgeService()['suspension_reason']);
        $this->assertSame('success', wispanelbridge_UnsuspendAccount($this->params()));
        $this->assertSame('active', $this->panelUser()['status']);
    }

    public function testChangePackagePasswordAndTerminate(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $this->assertSame('success', wispanelbridge_ChangePackage($this->params(['configoption1' => 'basic'])));
        $this->assertSame('basic', $this->panelUser()['package']);
        $this->assertSame(200, self::panelLogin($this->username, $this->params()['password']));
        $this->assertSame('success', wispanelbridge_ChangePassword($this->params(['password' => 'Another-Pass-42'])));
        $this->assertSame(200, self::panelLogin($this->username, 'Another-Pass-42'));
        $this->assertSame(401, self::panelLogin($this->username, $this->params()['password']));
        $this->assertSame('success', wispanelbridge_TerminateAccount($this->params()));
        $this->assertNull($this->panelUser());
        $this->assertSame('terminated', $this->bridgeService()['status']);
    }

    public function testAFailedCreateReturnsTheBridgesErrorAndRetryProvisioningFixesIt(): void
    {
        $this->setLicense(0);
        $error = wispanelbridge_CreateAccount($this->params());
        $this->assertStringContainsString('License limit reached', $error);
        $this->assertNull($this->panelUser());
        $fields = wispanelbridge_AdminServicesTabFields($this->params());
        $this->assertSame('failed', $fields['Order status']);
        $this->assertStringContainsString('License limit reached', $fields['Last error']);
        $vars = wispanelbridge_ClientArea($this->params())['vars'];
        $this->assertSame('failed', $vars['bridgeOrderState']);
        $this->assertSame(
            'Provisioning of your account failed. Our team has been notified and will take care of it.',
            $vars['bridgeOrderMessage']
        );
        $this->assertStringNotContainsString('License', json_encode($vars));
        $this->setLicense(-1);
        $this->assertSame(['Retry provisioning' => 'RetryProvisioning'], wispanelbridge_AdminCustomButtonArray($this->params()));
        $this->assertSame('success', wispanelbridge_RetryProvisioning($this->params()));
        $this->assertNotNull($this->panelUser());
    }

    public function testRetryButtonIsHiddenWithoutAnAdminToken(): void
    {
        $this->assertSame([], wispanelbridge_AdminCustomButtonArray($this->params(['serveraccesshash' => ''])));
    }

    public function testInvalidInputIsRefusedWithTheFieldNamed(): void
    {
        $error = wispanelbridge_CreateAccount($this->params(['username' => 'Bad Name']));
        $this->assertStringContainsString('HTTP 422', $error);
        $this->assertStringContainsString('username', $error);
    }

    public function testAnOrderStillRunningIsSuccessAndTheCallbackSettlesIt(): void
    {
        $this->setLicense(0);
        // No wait: the module answers before the bridge has run the order.
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params(['configoption5' => '0'])));
        // WHMCS activates a service whose CreateAccount answered "success".
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Active']);
        $this->waitFor(
            fn () => $this->hostingStatus() === 'Pending' && $this->todoFor() !== null,
            'the failure callback reached callback.php'
        );
        $this->assertStringContainsString('License limit reached', $this->todoFor()['description']);
        $this->setLicense(-1);
    }

    /** The order_id the module posted last for this service (from its own table). */
    private function lastOrderId(): string
    {
        return (string) WispanelBridge\Store::lastOrder($this->serviceId)['order_id'];
    }

    private function callbackBody(string $orderId, string $action, string $status = 'completed', ?int $serviceId = null): string
    {
        return json_encode([
            'order_id' => $orderId,
            'service_id' => (string) ($serviceId ?? $this->serviceId),
            'action' => $action,
            'status' => $status,
            'result' => $status === 'completed' ? 'success' : $status,
        ]);
    }

    private static function newDelivery(): string
    {
        return sprintf('%08x-0000-4000-8000-%012x', random_int(0, 0xffffffff), random_int(0, 0xffffffffffff));
    }

    public function testALateCallbackOfAnOlderOrderDoesNotUndoANewerOne(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $create = $this->lastOrderId();
        $this->assertSame('success', wispanelbridge_SuspendAccount($this->params()));
        $suspend = $this->lastOrderId();
        $this->assertNotSame($create, $suspend);
        $suspended = $this->callbackBody($suspend, 'suspend');
        [$first, $applied] = self::postCallback($suspended, self::signedCallback($suspended, self::newDelivery()));
        $this->assertSame([200, ['applied' => true]], [$first, $applied]);
        $this->assertSame('Suspended', $this->hostingStatus());
        // The create's delivery, retried by the bridge, lands after the suspend's.
        $created = $this->callbackBody($create, 'create');
        $delivery = self::newDelivery();
        [$late, $lateApplied] = self::postCallback($created, self::signedCallback($created, $delivery));
        $this->assertSame([200, ['applied' => true]], [$late, $lateApplied]);
        $this->assertSame('Suspended', $this->hostingStatus());
        $logged = array_values(array_filter(
            self::state()['modulelog'],
            fn (array $entry): bool => $entry['action'] === 'callback:create' && str_contains($entry['data'], $create)
        ));
        $this->assertNotEmpty($logged);
        $this->assertStringContainsString("order $suspend is newer", end($logged)['data']);
        [, $again] = self::postCallback($created, self::signedCallback($created, $delivery));
        $this->assertSame(['applied' => false, 'reason' => 'already applied'], $again);
        $this->assertSame('Suspended', $this->hostingStatus());
    }

    /** Deliver a signed callback to callback.php under a new delivery id; returns [status, answer]. */
    private function deliver(string $orderId, string $action, string $status = 'completed'): array
    {
        $body = $this->callbackBody($orderId, $action, $status);
        return self::postCallback($body, self::signedCallback($body, self::newDelivery()));
    }

    /** The module log entries of callbacks of one order. */
    private static function callbackLog(string $orderId): array
    {
        return array_values(array_filter(
            self::state()['modulelog'],
            fn (array $entry): bool => str_starts_with($entry['action'], 'callback:')
                && str_contains($entry['data'], json_encode($orderId))
        ));
    }

    private static function lastCallbackLog(string $orderId): string
    {
        $entries = self::callbackLog($orderId);
        self::assertNotEmpty($entries, "no callback of $orderId was logged");
        return (string) end($entries)['data'];
    }

    public function testAnUnsuspendCallbackBeforeRenewsAnswerLeavesLaterSweepStatusesApplying(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Active']); // as WHMCS does
        $this->assertSame('success', wispanelbridge_SuspendAccount($this->params(['suspendreason' => 'Overdue on Payment'])));
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Suspended']);
        $paidUntil = gmdate('Y-m-d', time() + 30 * 86400);
        $payment = "payment:unsuspend:{$this->serviceId}:$paidUntil";
        // The payment's unsuspend runs and its callback lands before Renew has the
        // bridge's answer in hand (delivered here first, so the order is certain).
        $this->assertSame([200, ['applied' => true]], $this->deliver($payment, 'unsuspend'));
        $this->assertSame('Active', $this->hostingStatus());
        $this->assertSame('success', wispanelbridge_Renew($this->params(['model' => (object) ['nextduedate' => $paidUntil]])));
        $this->assertSame('unsuspend', $this->bridgeOrder($payment)['action']); // the name Renew expected
        $this->assertSame('completed', WispanelBridge\Store::posted($payment)['status']);
        $this->assertNull(WispanelBridge\Store::unsettled($this->serviceId));
        // A later suspension by the bridge's sweep still reaches the service.
        $sweep = 'sweep:suspend:' . $this->serviceId . ':' . gmdate('Y-m-d', time() + 40 * 86400);
        $this->assertSame([200, ['applied' => true]], $this->deliver($sweep, 'suspend'));
        $this->assertSame('Suspended', $this->hostingStatus());
        $this->assertStringContainsString('service status Suspended', self::lastCallbackLog($sweep));
        // The bridge's own delivery of the unsuspend, whenever it lands, is older.
        $this->waitFor(fn () => $this->bridgeOrder($payment)['callback_status'] === 'delivered', 'the unsuspend was delivered');
        $this->assertSame('Suspended', $this->hostingStatus());
    }

    /** The bridge's order by the billing order_id. */
    private function bridgeOrder(string $orderId): array
    {
        $target = '/v1/orders?order_id=' . rawurlencode($orderId);
        [$status, $answer] = BridgeApi::fromParams($this->params())->signed('GET', $target);
        $this->assertSame(200, $status);
        $this->assertCount(1, $answer['orders']);
        return $answer['orders'][0];
    }

    public function testRecordPostingAfterTheCallbackLeavesTheOrderSettledAndOnlyARetryReopensIt(): void
    {
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Suspended']);
        $early = "whmcs-{$this->serviceId}-unsuspend-early";
        // The old Renew's order of events: the callback, then the posting.
        $this->assertSame([200, ['applied' => true]], $this->deliver($early, 'unsuspend'));
        WispanelBridge\Store::recordPosting($this->serviceId, $early, 'unsuspend', 'Suspended', 'queued');
        $this->assertSame('completed', WispanelBridge\Store::posted($early)['status']);
        $this->assertNull(WispanelBridge\Store::unsettled($this->serviceId));
        $sweep = "sweep:suspend:{$this->serviceId}:" . gmdate('Y-m-d');
        $this->deliver($sweep, 'suspend');
        $this->assertSame('Suspended', $this->hostingStatus());
        // An operator's retry runs a final order again: that one is unsettled anew.
        WispanelBridge\Store::reopenPosting($this->serviceId, $early, 'unsuspend', 'Suspended', 'queued');
        $this->assertSame($early, WispanelBridge\Store::unsettled($this->serviceId)['order_id']);
    }

    public function testRenewWithNothingToUnsuspendLeavesNoPostingBehind(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $paidUntil = gmdate('Y-m-d', time() + 30 * 86400);
        $this->assertSame('success', wispanelbridge_Renew($this->params(['model' => (object) ['nextduedate' => $paidUntil]])));
        $this->assertSame($paidUntil, $this->bridgeService()['paid_until']);
        $this->assertNull(WispanelBridge\Store::posted("payment:unsuspend:{$this->serviceId}:$paidUntil"));
        $this->assertNull(WispanelBridge\Store::unsettled($this->serviceId));
    }

    public function testAPostingWhoseCallbackNeverCameStopsHoldingBackSweepStatusesAfterTheAgeLimit(): void
    {
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Active']);
        $lost = "whmcs-{$this->serviceId}-change_package-lost";
        WispanelBridge\Store::recordPosting($this->serviceId, $lost, 'change_package', 'Active', 'queued');
        $sweep = "sweep:suspend:{$this->serviceId}:" . gmdate('Y-m-d');
        $this->assertSame([200, ['applied' => true]], $this->deliver($sweep, 'suspend'));
        $this->assertSame('Active', $this->hostingStatus()); // held back: $lost may still settle it
        $this->assertStringContainsString("order $lost is newer", self::lastCallbackLog($sweep));
        $this->assertSame(24.0, WispanelBridge\Store::unsettledHours());
        Capsule::table(WispanelBridge\Store::POSTED)->where('order_id', $lost)
            ->update(['posted_at' => gmdate('Y-m-d H:i:s', time() - 25 * 3600)]);
        $this->assertNull(WispanelBridge\Store::unsettled($this->serviceId));
        $this->assertSame([200, ['applied' => true]], $this->deliver($sweep, 'suspend')); // the bridge's next delivery
        $this->assertSame('Suspended', $this->hostingStatus());
    }

    public function testCallbacksPruneOldDeliveriesAndSettledPostingsButKeepEachServicesNewest(): void
    {
        $daysAgo = fn (int $days): string => gmdate('Y-m-d H:i:s', time() - $days * 86400);
        $old = self::newDelivery();
        $recent = self::newDelivery();
        Capsule::table(WispanelBridge\Store::DELIVERIES)->insert(['delivery' => $old, 'applied_at' => $daysAgo(91)]);
        Capsule::table(WispanelBridge\Store::DELIVERIES)->insert(['delivery' => $recent, 'applied_at' => $daysAgo(89)]);
        $other = $this->serviceId + 1;
        $rows = [ // order_id => [service, sequence, status, days ago]
            "prune-{$this->serviceId}-a" => [$this->serviceId, 1, 'completed', 100],
            "prune-{$this->serviceId}-b" => [$this->serviceId, 2, 'failed', 95],
            "prune-{$this->serviceId}-unheard" => [$this->serviceId, 3, 'queued', 100],
            "prune-{$this->serviceId}-recent" => [$this->serviceId, 4, 'completed', 10],
            "prune-{$this->serviceId}-newest" => [$this->serviceId, 5, 'completed', 92],
            "prune-$other-only" => [$other, 1, 'cancelled', 120],
        ];
        WispanelBridge\Store::ensureSchema();
        foreach ($rows as $orderId => [$service, $sequence, $status, $age]) {
            Capsule::table(WispanelBridge\Store::POSTED)->insert([
                'order_id' => $orderId, 'serviceid' => $service, 'sequence' => $sequence, 'action' => 'suspend',
                'status' => $status, 'whmcs_status_before' => 'Active', 'posted_at' => $daysAgo($age),
            ]);
        }
        // Any applied callback prunes (here one of a third service: one of this
        // service would itself become its newest posting).
        $third = $this->serviceId + 2;
        $trigger = $this->callbackBody("whmcs-$third-change_password-x", 'change_password', 'completed', $third);
        $this->assertSame([200, ['applied' => true]], self::postCallback($trigger, self::signedCallback($trigger, self::newDelivery())));
        $deliveries = array_column(self::state()['tables'][WispanelBridge\Store::DELIVERIES], 'delivery');
        $this->assertNotContains($old, $deliveries);
        $this->assertContains($recent, $deliveries);
        $kept = array_column(self::state()['tables'][WispanelBridge\Store::POSTED], 'order_id');
        $this->assertSame(
            ["prune-{$this->serviceId}-unheard", "prune-{$this->serviceId}-recent", "prune-{$this->serviceId}-newest", "prune-$other-only"],
            array_values(array_intersect($kept, array_keys($rows)))
        );
    }

    public function testASuspendThatFailsAfterSuccessGivesTheServiceBackItsStatus(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Active']); // as WHMCS does
        // The panel answers 429 for 3 s, then refuses the next request (the suspend).
        self::sim('POST', '/_sim/faults', ['storm_seconds' => 3]);
        self::sim('POST', '/_sim/fail-next', ['count' => 1, 'status' => 400]);
        try {
            $this->assertSame('success', wispanelbridge_SuspendAccount($this->params(['configoption5' => '0'])));
            // WHMCS suspends a service whose SuspendAccount answered "success".
            localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Suspended']);
            $vars = wispanelbridge_ClientArea($this->params())['vars'];
            $this->assertSame(
                ['pending', 'A change to your account is in progress.'],
                [$vars['bridgeOrderState'], $vars['bridgeOrderMessage']]
            );
            $this->waitFor(fn () => $this->todoFor() !== null, 'the failure callback reached callback.php');
        } finally {
            self::sim('POST', '/_sim/faults/clear');
        }
        $this->assertSame('Active', $this->hostingStatus());
        $todo = $this->todoFor();
        $this->assertStringContainsString('suspend failed', $todo['title']);
        $this->assertStringContainsString('The service is back to Active.', $todo['description']);
        $this->assertSame('active', $this->panelUser()['status']);
    }

    private function todoFor(): ?array
    {
        foreach (self::state()['tables']['tbltodolist'] ?? [] as $todo) {
            if (str_contains($todo['title'], '#' . $this->serviceId)) {
                return $todo;
            }
        }
        return null;
    }

    private static function postCallback(string $body, array $headers): array
    {
        $curl = curl_init(getenv('CALLBACK_URL'));
        $lines = [];
        foreach ($headers as $name => $value) {
            $lines[] = "$name: $value";
        }
        curl_setopt_array($curl, [
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $lines,
        ]);
        $raw = (string) curl_exec($curl);
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        return [$status, json_decode($raw, true)];
    }

    private static function signedCallback(string $body, string $delivery, int $age = 0, ?string $secret = null): array
    {
        $timestamp = (string) (time() - $age);
        $signature = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret ?? (string) getenv('BRIDGE_SECRET'));
        return [
            'Content-Type' => 'application/json',
            'X-Bridge-Timestamp' => $timestamp,
            'X-Bridge-Signature' => $signature,
            'X-Bridge-Delivery' => $delivery,
        ];
    }

    public function testCallbackRefusesForgeriesAndStaleTimestampsAndAppliesADeliveryOnce(): void
    {
        $body = json_encode([
            'order_id' => "whmcs-{$this->serviceId}-suspend-x",
            'service_id' => (string) $this->serviceId,
            'action' => 'suspend',
            'status' => 'completed',
            'result' => 'success',
        ]);
        $delivery = sprintf('%08x-0000-4000-8000-%012x', random_int(0, 0xffffffff), $this->serviceId);
        [$forged] = self::postCallback($body, self::signedCallback($body, $delivery, 0, 'not-the-secret'));
        [$stale] = self::postCallback($body, self::signedCallback($body, $delivery, 301));
        $this->assertSame([401, 401], [$forged, $stale]);
        $this->assertSame('Pending', $this->hostingStatus());
        [$first, $applied] = self::postCallback($body, self::signedCallback($body, $delivery));
        $this->assertSame([200, ['applied' => true]], [$first, $applied]);
        $this->assertSame('Suspended', $this->hostingStatus());
        localAPI('UpdateClientProduct', ['serviceid' => $this->serviceId, 'status' => 'Active']);
        [$again, $replay] = self::postCallback($body, self::signedCallback($body, $delivery));
        $this->assertSame(200, $again);
        $this->assertFalse($replay['applied']);
        $this->assertSame('Active', $this->hostingStatus()); // the replay changed nothing
    }

    private static function bridgeCli(string ...$args): string
    {
        $command = escapeshellarg((string) getenv('BRIDGE_CLI')) . ' '
            . implode(' ', array_map('escapeshellarg', $args)) . ' 2>&1';
        exec($command, $output, $code);
        $text = implode("\n", $output);
        self::assertSame(0, $code, "bridge " . implode(' ', $args) . " failed:\n$text");
        return $text;
    }

    /** GET without following redirects: [status, Location]. */
    private static function visit(string $url): array
    {
        $curl = curl_init($url);
        curl_setopt_array($curl, [CURLOPT_RETURNTRANSFER => true, CURLOPT_HEADER => true, CURLOPT_FOLLOWLOCATION => false]);
        $raw = (string) curl_exec($curl);
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        preg_match('/^location:\s*(\S+)/mi', $raw, $location);
        return [$status, $location[1] ?? null];
    }

    public function testServiceSingleSignOnGivesAPanelLinkThatWorksOnce(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $sso = wispanelbridge_ServiceSingleSignOn($this->params());
        $this->assertSame(['success', 'redirectTo'], array_keys($sso));
        $this->assertTrue($sso['success']);
        $this->assertStringStartsWith(getenv('SIM_URL') . '/sso/consume/', $sso['redirectTo']);
        [$first, $location] = self::visit($sso['redirectTo']);
        $this->assertSame(302, $first);
        $this->assertNotNull($location);
        [$second] = self::visit($sso['redirectTo']);
        $this->assertSame(410, $second); // single use
        $this->assertStringNotContainsString($sso['redirectTo'], json_encode(self::state()['modulelog']));
    }

    public function testServiceSingleSignOnRefusalsSayWhy(): void
    {
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $this->assertSame('success', wispanelbridge_SuspendAccount($this->params(['suspendreason' => 'Abuse'])));
        $sso = wispanelbridge_ServiceSingleSignOn($this->params());
        $this->assertFalse($sso['success']);
        $this->assertArrayNotHasKey('redirectTo', $sso);
        $this->assertSame(
            'Panel login is not available for this service: service is suspended: SSO needs an active service',
            $sso['errorMsg']
        );
        $this->assertSame('success', wispanelbridge_UnsuspendAccount($this->params()));
        self::sim('POST', '/_sim/fail-next', ['count' => 1, 'status' => 500]);
        $down = wispanelbridge_ServiceSingleSignOn($this->params());
        $this->assertFalse($down['success']);
        $this->assertSame(
            'The panel cannot log you in right now (panel unavailable (500)); try again in a minute',
            $down['errorMsg']
        );
        $this->assertTrue(wispanelbridge_ServiceSingleSignOn($this->params())['success']);
        $unknown = wispanelbridge_ServiceSingleSignOn($this->params(['serviceid' => $this->serviceId + 1]));
        $this->assertSame('The bridge does not know this service (not provisioned yet)', $unknown['errorMsg']);
    }

    public function testUsageUpdateWritesThePanelsFiguresPageByPage(): void
    {
        $other = $this->serviceId + 1;
        $otherUser = $this->username . 'b';
        Capsule::table('tblhosting')->insert(['id' => $other, 'server' => 1, 'domainstatus' => 'Pending']);
        Capsule::table('tblhosting')->where('id', $this->serviceId)->update(['disklimit' => 2048, 'bwlimit' => 10240]);
        $this->assertSame('success', wispanelbridge_CreateAccount($this->params()));
        $this->assertSame('success', wispanelbridge_CreateAccount(
            $this->params(['serviceid' => $other, 'username' => $otherUser])
        ));
        self::sim('POST', '/_sim/usage', ['username' => $this->username, 'disk_used_mb' => 321, 'bandwidth_used_mb' => 4567]);
        self::sim('POST', '/_sim/usage', ['username' => $otherUser, 'disk_used_mb' => 7, 'bandwidth_used_mb' => 89]);
        self::bridgeCli('usage', 'sync', '--server', 'demo');
        $this->assertSame('success', wispanelbridge_UsageUpdate($this->params()));
        $row = Capsule::table('tblhosting')->where('id', $this->serviceId)->first();
        $this->assertSame([321, 4567, 2048, 10240], [$row->diskusage, $row->bwusage, $row->disklimit, $row->bwlimit]);
        $this->assertMatchesRegularExpression('/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/', $row->lastupdate);
        $otherRow = Capsule::table('tblhosting')->where('id', $other)->first();
        $this->assertSame([7, 89], [$otherRow->diskusage, $otherRow->bwusage]);
        // The run of another WHMCS server record leaves this server's services alone.
        Capsule::table('tblhosting')->where('id', $this->serviceId)->update(['diskusage' => 0]);
        $this->assertSame('success', wispanelbridge_UsageUpdate($this->params(['serverid' => 2])));
        $this->assertSame(0, Capsule::table('tblhosting')->where('id', $this->serviceId)->value('diskusage'));
    }

    public function testUsageUpdateReportsABadSecret(): void
    {
        $error = wispanelbridge_UsageUpdate($this->params(['serverpassword' => 'not-the-secret']));
        $this->assertStringContainsString('HTTP 401', $error);
    }

    public function testPackageLoaderListsThePanelsPackagesAfterServersTest(): void
    {
        self::bridgeCli('servers', 'test', 'demo');
        $panel = array_keys(self::sim('GET', '/_sim/state')['packages']);
        sort($panel);
        $this->assertSame(array_combine($panel, $panel), wispanelbridge_PackageLoader($this->params(['configoption4' => ''])));
        $this->assertContains('pro', $panel);
    }

    public function testPackageLoaderThrowsSoWhmcsKeepsTheTextField(): void
    {
        $this->assertSame('text', wispanelbridge_ConfigOptions()['Package']['Type']);
        try {
            wispanelbridge_PackageLoader($this->params(['configoption4' => 'no-such-group']));
            $this->fail('an unknown group gave a list');
        } catch (Exception $exc) {
            $this->assertStringContainsString("no active server in group 'no-such-group'", $exc->getMessage());
        }
        $this->expectException(Exception::class);
        $this->expectExceptionMessage('Bridge unreachable');
        wispanelbridge_PackageLoader($this->params(['serverport' => (string) getenv('CLOSED_PORT')]));
    }
}
