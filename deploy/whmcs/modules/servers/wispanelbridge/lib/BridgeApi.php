<?php
/**
 * HTTP client of wispanel-bridge for the WHMCS module: HMAC-signed intake calls
 * (docs/integration.md) and bearer-token admin calls. No Composer, only ext-curl.
 */

declare(strict_types=1);

namespace WispanelBridge;

final class BridgeError extends \RuntimeException
{
}

final class BridgeApi
{
    private string $baseUrl;

    public function __construct(
        string $baseUrl,
        private string $secret,
        private string $adminToken = '',
        private int $timeout = 20,
    ) {
        $this->baseUrl = rtrim($baseUrl, '/');
    }

    /** Build the client from a WHMCS server record's module parameters. */
    public static function fromParams(array $params): self
    {
        $host = trim((string) ($params['serverhostname'] ?? '')) ?: (string) ($params['serverip'] ?? '');
        if ($host === '') {
            throw new BridgeError('The server record has no hostname');
        }
        $secure = !empty($params['serversecure']) && $params['serversecure'] !== 'off';
        $scheme = $secure ? 'https' : 'http';
        $port = (string) ($params['serverport'] ?? '');
        $url = preg_match('#^https?://#', $host) ? $host : "$scheme://$host";
        if ($port !== '' && !preg_match('#:\d+$#', $url)) {
            $url .= ':' . $port;
        }
        $secret = (string) ($params['serverpassword'] ?? '');
        if ($secret === '') {
            throw new BridgeError('The server record has no password (the bridge intake secret)');
        }
        return new self($url, $secret, trim((string) ($params['serveraccesshash'] ?? '')));
    }

    public function hasAdminToken(): bool
    {
        return $this->adminToken !== '';
    }

    public static function sign(string $secret, string $timestamp, string $method, string $target, string $body): string
    {
        $message = $timestamp . '.' . strtoupper($method) . '.' . $target . '.' . $body;
        return 'sha256=' . hash_hmac('sha256', $message, $secret);
    }

    /** A signed intake request; returns [status, decoded body]. */
    public function signed(string $method, string $target, ?array $payload = null): array
    {
        $body = $payload === null ? '' : json_encode($payload, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
        $timestamp = (string) time();
        $headers = [
            'X-Bridge-Timestamp: ' . $timestamp,
            'X-Bridge-Signature: ' . self::sign($this->secret, $timestamp, $method, $target, $body),
        ];
        return $this->send($method, $target, $headers, $payload === null ? null : $body);
    }

    /** An admin API request with the operator token of the server record. */
    public function admin(string $method, string $target, ?array $payload = null): array
    {
        if (!$this->hasAdminToken()) {
            throw new BridgeError('No admin token in the server record (access hash)');
        }
        $body = $payload === null ? null : json_encode($payload, JSON_THROW_ON_ERROR);
        return $this->send($method, $target, ['Authorization: Bearer ' . $this->adminToken], $body);
    }

    private function send(string $method, string $target, array $headers, ?string $body): array
    {
        $curl = curl_init($this->baseUrl . $target);
        $options = [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => $this->timeout,
            CURLOPT_CONNECTTIMEOUT => 5,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_FOLLOWLOCATION => false,
        ];
        if ($body !== null) {
            $options[CURLOPT_POSTFIELDS] = $body;
            $options[CURLOPT_HTTPHEADER][] = 'Content-Type: application/json';
        }
        curl_setopt_array($curl, $options);
        $raw = curl_exec($curl);
        if ($raw === false) {
            $error = curl_error($curl);
            curl_close($curl);
            throw new BridgeError('Bridge unreachable: ' . $error);
        }
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        $decoded = $raw === '' ? [] : json_decode($raw, true);
        return [$status, is_array($decoded) ? $decoded : ['raw' => substr($raw, 0, 200)]];
    }

    /** POST an order; the same array again (a network retry) replays the first answer. */
    public function submitOrder(array $order): array
    {
        [$status, $answer] = $this->signed('POST', '/v1/orders', $order);
        if ($status !== 200 && $status !== 202) {
            throw new BridgeError(self::describe($status, $answer));
        }
        return $answer['order'];
    }

    public function getOrder(string $orderUuid): array
    {
        [$status, $answer] = $this->signed('GET', '/v1/orders/' . rawurlencode($orderUuid));
        if ($status !== 200) {
            throw new BridgeError(self::describe($status, $answer));
        }
        return $answer['order'];
    }

    /** Poll an order until it is final or $seconds have passed. */
    public function waitForOrder(array $order, float $seconds): array
    {
        $deadline = microtime(true) + $seconds;
        while (!in_array($order['status'], ['completed', 'failed', 'cancelled'], true)
            && microtime(true) < $deadline) {
            usleep(200000);
            $order = $this->getOrder($order['id']);
        }
        return $order;
    }

    /** The bridge's error answer as one line: status and the reason it gave. */
    public static function describe(int $status, array $answer): string
    {
        $detail = $answer['detail'] ?? $answer['error'] ?? $answer;
        if (is_array($detail)) {
            $parts = [];
            foreach ($detail as $item) {
                if (is_array($item) && isset($item['msg'])) {
                    $parts[] = implode('.', array_map('strval', $item['loc'] ?? [])) . ': ' . $item['msg'];
                }
            }
            $detail = $parts ? implode('; ', $parts) : json_encode($detail);
        }
        return "Bridge answered HTTP $status: $detail";
    }
}
