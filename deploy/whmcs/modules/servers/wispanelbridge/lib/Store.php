<?php
/**
 * The module's own tables (through WHMCS's Capsule): the last bridge order of each
 * service, and the callback delivery ids already applied.
 */

declare(strict_types=1);

namespace WispanelBridge;

use WHMCS\Database\Capsule;

final class Store
{
    public const ORDERS = 'mod_wispanelbridge_orders';
    public const DELIVERIES = 'mod_wispanelbridge_deliveries';

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
                $table->timestamp('applied_at')->nullable();
            });
        }
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
