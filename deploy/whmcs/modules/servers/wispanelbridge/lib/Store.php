<?php
/**
 * The module's own tables (through WHMCS's Capsule): the last bridge order of each
 * service (for the admin tab, the client area and the retry button), every order the
 * module posted in posting order (so a late callback of an older order cannot undo a
 * newer one, and a failed order can give the service back the status it had), and
 * the callback delivery ids already applied.
 */

declare(strict_types=1);

namespace WispanelBridge;

use WHMCS\Database\Capsule;

final class Store
{
    public const ORDERS = 'mod_wispanelbridge_orders';
    public const DELIVERIES = 'mod_wispanelbridge_deliveries';
    public const POSTED = 'mod_wispanelbridge_posted';

    /** Bridge statuses after which the order never changes again. */
    public const FINAL = ['completed', 'failed', 'cancelled'];

    /** A posting whose request never reached the bridge: it supersedes nothing. */
    public const UNSENT = 'unsent';

    /**
     * Hours after which an order posted and never heard of stops holding back the
     * statuses of orders the module did not post (define WISPANELBRIDGE_UNSETTLED_HOURS
     * in WHMCS's configuration.php to change it). Far beyond the bridge's callback
     * retries (8 attempts within minutes, docs/integration.md): a posting this old
     * whose callback never came is one whose every delivery failed.
     */
    public const UNSETTLED_HOURS = 24;

    /** Days settled postings and applied delivery ids are kept (WISPANELBRIDGE_PRUNE_DAYS). */
    public const PRUNE_DAYS = 90;

    /** At most this many rows of each table are pruned per callback: a cheap, bounded DELETE. */
    public const PRUNE_BATCH = 200;

    public static function ensureSchema(): void
    {
        $schema = Capsule::schema();
        if (!$schema->hasTable(self::ORDERS)) {
            $schema->create(self::ORDERS, function ($table) {
                $table->integer('serviceid')->primary();
                $table->string('order_uuid', 36);
                $table->string('order_id', 255);
                $table->string('action', 32);
                $table->string('status', 32);
                $table->text('last_error')->nullable();
                $table->string('server', 64)->nullable();
                $table->timestamp('updated_at')->nullable();
            });
        }
        if (!$schema->hasTable(self::DELIVERIES)) {
            $schema->create(self::DELIVERIES, function ($table) {
                $table->string('delivery', 36)->primary();
                $table->timestamp('applied_at')->nullable()->index();
            });
        }
        if (!$schema->hasTable(self::POSTED)) {
            $schema->create(self::POSTED, function ($table) {
                $table->string('order_id', 255)->primary();
                $table->integer('serviceid')->index();
                $table->bigInteger('sequence');
                $table->string('action', 32);
                $table->string('status', 32);
                $table->string('whmcs_status_before', 32)->nullable();
                $table->timestamp('posted_at')->nullable()->index();
            });
        }
    }

    /**
     * Record an order as the newest of its service, before it is sent (its callback
     * can arrive before the module's wait ends). $whmcsStatusBefore is the service's
     * WHMCS status now, given back to it if the order fails. Posting an order_id again
     * makes it the newest again, unless its outcome is already known: a final order
     * never runs again (the bridge replays its answer), so its row is left as it is
     * (its callback may have come before this call: a payment's unsuspend).
     */
    public static function recordPosting(
        int $serviceId,
        string $orderId,
        string $action,
        ?string $whmcsStatusBefore,
        string $status = 'posting'
    ): void {
        $existing = self::posted($orderId);
        if ($existing !== null && in_array($existing['status'], self::FINAL, true)) {
            return;
        }
        self::writePosting($serviceId, $orderId, $action, $whmcsStatusBefore, $status, $existing);
    }

    /**
     * Record an operator's retry of an order, final or not: the bridge runs it again,
     * after any other order of the service, and its callback comes again.
     */
    public static function reopenPosting(
        int $serviceId,
        string $orderId,
        string $action,
        ?string $whmcsStatusBefore,
        string $status
    ): void {
        self::writePosting($serviceId, $orderId, $action, $whmcsStatusBefore, $status, self::posted($orderId));
    }

    private static function writePosting(
        int $serviceId,
        string $orderId,
        string $action,
        ?string $whmcsStatusBefore,
        string $status,
        ?array $existing
    ): void {
        $sequence = (int) round(microtime(true) * 1_000_000);
        foreach (self::postedOf($serviceId) as $row) {
            // Never behind an order already recorded, even if the clock stepped back.
            $sequence = max($sequence, (int) $row['sequence'] + 1);
        }
        $row = [
            'serviceid' => $serviceId,
            'sequence' => $sequence,
            'action' => $action,
            'status' => $status,
            'whmcs_status_before' => $whmcsStatusBefore,
            'posted_at' => gmdate('Y-m-d H:i:s'),
        ];
        if ($existing === null) {
            Capsule::table(self::POSTED)->insert(['order_id' => $orderId] + $row);
        } else {
            Capsule::table(self::POSTED)->where('order_id', $orderId)->update($row);
        }
    }

    /**
     * The bridge's latest word on a posted order (or UNSENT). A final status stays:
     * the module's "still running" may be read just before the callback lands.
     */
    public static function settlePosting(string $orderId, string $status): void
    {
        $row = self::posted($orderId);
        if ($row === null || (in_array($row['status'], self::FINAL, true) && !in_array($status, self::FINAL, true))) {
            return;
        }
        Capsule::table(self::POSTED)->where('order_id', $orderId)->update(['status' => $status]);
    }

    /** Put a posting row back as it was (a retry the bridge refused). */
    public static function restorePosting(string $orderId, ?array $row): void
    {
        if ($row === null) {
            Capsule::table(self::POSTED)->where('order_id', $orderId)->delete();
            return;
        }
        Capsule::table(self::POSTED)->where('order_id', $orderId)->update($row);
    }

    public static function posted(string $orderId): ?array
    {
        self::ensureSchema();
        $row = Capsule::table(self::POSTED)->where('order_id', $orderId)->first();
        return $row === null ? null : (array) $row;
    }

    /** @return list<array> the orders posted for a service, any order */
    public static function postedOf(int $serviceId): array
    {
        self::ensureSchema();
        $rows = [];
        foreach (Capsule::table(self::POSTED)->where('serviceid', $serviceId)->get() as $row) {
            $rows[] = (array) $row; // a Collection in WHMCS: iterate, do not index
        }
        return $rows;
    }

    /** The newest order sent for the service after the given sequence, if any. */
    public static function newerThan(int $serviceId, int $sequence): ?array
    {
        $newest = null;
        foreach (self::postedOf($serviceId) as $row) {
            if ((int) $row['sequence'] > $sequence && $row['status'] !== self::UNSENT
                && ($newest === null || (int) $row['sequence'] > (int) $newest['sequence'])) {
                $newest = $row;
            }
        }
        return $newest;
    }

    /**
     * An order sent for the service whose outcome has not been heard yet, if any.
     * One posted more than unsettledHours() ago no longer counts: its callback is
     * not coming (every delivery failed), and it must not hold back the statuses of
     * the bridge's own orders for the service forever.
     */
    public static function unsettled(int $serviceId): ?array
    {
        $cutoff = gmdate('Y-m-d H:i:s', time() - (int) round(self::unsettledHours() * 3600));
        foreach (self::postedOf($serviceId) as $row) {
            if ($row['status'] !== self::UNSENT && !in_array($row['status'], self::FINAL, true)
                && !($row['posted_at'] !== null && (string) $row['posted_at'] < $cutoff)) {
                return $row;
            }
        }
        return null;
    }

    public static function unsettledHours(): float
    {
        return defined('WISPANELBRIDGE_UNSETTLED_HOURS')
            ? max(0.0, (float) constant('WISPANELBRIDGE_UNSETTLED_HOURS'))
            : (float) self::UNSETTLED_HOURS;
    }

    public static function pruneDays(): float
    {
        return defined('WISPANELBRIDGE_PRUNE_DAYS')
            ? max(1.0, (float) constant('WISPANELBRIDGE_PRUNE_DAYS'))
            : (float) self::PRUNE_DAYS;
    }

    /**
     * Delete applied delivery ids and settled postings older than pruneDays(), at
     * most PRUNE_BATCH of each per call (callback.php calls it on every applied
     * callback, so the tables shrink a batch at a time). The newest posting of a
     * service is kept, however old: later callbacks are ordered against it.
     * Unsettled postings are kept too (unsettled() already ignores old ones).
     * A delivery id older than the bridge's retries cannot come back, so forgetting
     * it replays nothing. Returns [deliveries, postings] deleted.
     */
    public static function prune(): array
    {
        self::ensureSchema();
        $cutoff = gmdate('Y-m-d H:i:s', time() - (int) round(self::pruneDays() * 86400));
        $deliveries = Capsule::table(self::DELIVERIES)
            ->where('applied_at', '<', $cutoff)
            ->limit(self::PRUNE_BATCH)
            ->delete();
        $candidates = [];
        foreach (Capsule::table(self::POSTED)
            ->where('posted_at', '<', $cutoff)
            ->whereIn('status', self::FINAL)
            ->limit(self::PRUNE_BATCH)
            ->get() as $row) {
            $candidates[] = (array) $row;
        }
        if ($candidates === []) {
            return [$deliveries, 0];
        }
        $newest = [];
        $services = array_values(array_unique(array_map(fn (array $row): int => (int) $row['serviceid'], $candidates)));
        foreach (Capsule::table(self::POSTED)->whereIn('serviceid', $services)->get() as $row) {
            $row = (array) $row;
            $newest[(int) $row['serviceid']] = max($newest[(int) $row['serviceid']] ?? PHP_INT_MIN, (int) $row['sequence']);
        }
        $doomed = [];
        foreach ($candidates as $row) {
            if ((int) $row['sequence'] < $newest[(int) $row['serviceid']]) {
                $doomed[] = (string) $row['order_id'];
            }
        }
        $postings = $doomed === [] ? 0 : Capsule::table(self::POSTED)->whereIn('order_id', $doomed)->delete();
        return [$deliveries, $postings];
    }

    /** Remember the latest bridge order of a service (one row per service). */
    public static function recordOrder(int $serviceId, array $order): void
    {
        self::ensureSchema();
        $row = [
            'order_uuid' => (string) $order['id'],
            'order_id' => (string) $order['order_id'],
            'action' => (string) $order['action'],
            'status' => (string) $order['status'],
            'last_error' => $order['last_error'] ?? null,
            'server' => $order['server'] ?? null,
            'updated_at' => gmdate('Y-m-d H:i:s'),
        ];
        $query = Capsule::table(self::ORDERS)->where('serviceid', $serviceId);
        if ($query->first() === null) {
            Capsule::table(self::ORDERS)->insert(['serviceid' => $serviceId] + $row);
        } else {
            Capsule::table(self::ORDERS)->where('serviceid', $serviceId)->update($row);
        }
    }

    /** Update the remembered order from a callback, if it is that order. */
    public static function recordCallback(int $serviceId, array $callback): void
    {
        self::ensureSchema();
        Capsule::table(self::ORDERS)
            ->where('serviceid', $serviceId)
            ->where('order_id', (string) $callback['order_id'])
            ->update([
                'status' => (string) $callback['status'],
                'last_error' => $callback['status'] === 'completed' ? null : (string) $callback['result'],
                'updated_at' => gmdate('Y-m-d H:i:s'),
            ]);
    }

    public static function lastOrder(int $serviceId): ?array
    {
        self::ensureSchema();
        $row = Capsule::table(self::ORDERS)->where('serviceid', $serviceId)->first();
        return $row === null ? null : (array) $row;
    }

    /**
     * Claim a delivery id: true the first time, false when it was applied before.
     * The primary key makes two concurrent claims of one id end with one winner.
     */
    public static function claimDelivery(string $delivery): bool
    {
        self::ensureSchema();
        $inserted = Capsule::table(self::DELIVERIES)->insertOrIgnore([
            'delivery' => $delivery,
            'applied_at' => gmdate('Y-m-d H:i:s'),
        ]);
        return $inserted === 1;
    }

    /** Give a claimed id back when applying it failed, so the retry applies it. */
    public static function releaseDelivery(string $delivery): void
    {
        Capsule::table(self::DELIVERIES)->where('delivery', $delivery)->delete();
    }
}
