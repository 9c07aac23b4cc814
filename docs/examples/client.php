<?php
/**
 * A minimal billing-side client of wispanel-bridge (PHP 8.1+, curl extension).
 *
 * From the command line it signs intake requests, submits a create order and polls
 * it to a final status. Served as a web script it receives callbacks: verifies the
 * signature and the timestamp, skips delivery ids already applied, and appends each
 * applied callback to APPLIED_FILE. See docs/integration.md.
 *
 *   BRIDGE_URL=http://127.0.0.1:8000 BRIDGE_INTAKE_SECRET=... [CALLBACK_URL=...] \
 *       php client.php create SERVICE_ID USERNAME EMAIL DOMAIN
 *   BRIDGE_INTAKE_SECRET=... APPLIED_FILE=applied.txt php -S 127.0.0.1:8601 client.php
 */

declare(strict_types=1);

const BRIDGE_MAX_SKEW_SECONDS = 300;
const BRIDGE_FINAL = ['completed', 'failed', 'cancelled'];

/** X-Bridge-Signature of a request; $target is the path and query as sent. */
function signRequest(string $secret, string $timestamp, string $method, string $target, string $body): string
{
    $message = $timestamp . '.' . strtoupper($method) . '.' . $target . '.' . $body;
    return 'sha256=' . hash_hmac('sha256', $message, $secret);
}

/** True when a callback's signature is right and its timestamp is recent. */
function verifyCallback(string $secret, string $timestamp, string $signature, string $body, ?int $now = null): bool
{
    if (!ctype_digit($timestamp)) {
        return false;
    }
    if (abs(($now ?? time()) - (int) $timestamp) > BRIDGE_MAX_SKEW_SECONDS) {
        return false;
    }
    $expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    return hash_equals($expected, $signature);
}

final class BridgeClient
{
    public function __construct(
        private string $baseUrl,
        private string $secret,
        private int $timeout = 30,
    ) {
        $this->baseUrl = rtrim($baseUrl, '/');
    }

    /** Send one signed request; returns [status, decoded JSON]. */
    public function request(string $method, string $target, ?array $payload = null): array
    {
        $body = $payload === null ? '' : json_encode($payload, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
        $timestamp = (string) time();
        $headers = [
            'X-Bridge-Timestamp: ' . $timestamp,
            'X-Bridge-Signature: ' . signRequest($this->secret, $timestamp, $method, $target, $body),
        ];
        $curl = curl_init($this->baseUrl . $target);
        $options = [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => $this->timeout,
            CURLOPT_HTTPHEADER => $headers,
        ];
        if ($payload !== null) {
            $options[CURLOPT_POSTFIELDS] = $body; // sent byte for byte as signed
            $options[CURLOPT_HTTPHEADER][] = 'Content-Type: application/json';
        }
        curl_setopt_array($curl, $options);
        $raw = curl_exec($curl);
        if ($raw === false) {
            $error = curl_error($curl);
            curl_close($curl);
            throw new RuntimeException('bridge unreachable: ' . $error);
        }
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        return [$status, $raw === '' ? [] : json_decode($raw, true, 512, JSON_THROW_ON_ERROR)];
    }

    /** POST /v1/orders; the same order again replays the first answer. */
    public function submitOrder(array $order): array
    {
        [$status, $answer] = $this->request('POST', '/v1/orders', $order);
        if ($status !== 200 && $status !== 202) {
            throw new RuntimeException("intake answered $status: " . json_encode($answer));
        }
        return $answer['order'];
    }

    public function getOrder(string $orderUuid): array
    {
        [$status, $answer] = $this->request('GET', '/v1/orders/' . rawurlencode($orderUuid));
        if ($status !== 200) {
            throw new RuntimeException("GET order answered $status");
        }
        return $answer['order'];
    }

    /** Poll an order until it is final (or the timeout passes). */
    public function wait(array $order, float $timeout = 120.0): array
    {
        $deadline = microtime(true) + $timeout;
        while (!in_array($order['status'], BRIDGE_FINAL, true) && microtime(true) < $deadline) {
            usleep(500000);
            $order = $this->getOrder($order['id']);
        }
        return $order;
    }
}

/** A create order with a domain and SSL; order_id is new for each request. */
function createOrder(string $serviceId, string $username, string $email, string $domain, ?string $callbackUrl = null): array
{
    $order = [
        'order_id' => $serviceId . '-create-' . bin2hex(random_bytes(4)),
        'service_id' => $serviceId,
        'action' => 'create',
        'account' => [
            'username' => $username,
            'email' => $email,
            'password' => bin2hex(random_bytes(12)),
            'package' => 'default',
        ],
        'domain' => $domain,
        'ssl' => true,
    ];
    if ($callbackUrl !== null && $callbackUrl !== '') {
        $order['callback_url'] = $callbackUrl; // else BRIDGE_BILLING_CALLBACK_URL
    }
    return $order;
}

/** The web entry point: one callback, applied at most once per delivery id. */
function receiveCallback(string $secret, string $appliedFile): void
{
    header('Content-Type: application/json');
    $body = (string) file_get_contents('php://input');
    $timestamp = $_SERVER['HTTP_X_BRIDGE_TIMESTAMP'] ?? '';
    $signature = $_SERVER['HTTP_X_BRIDGE_SIGNATURE'] ?? '';
    if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST' || !verifyCallback($secret, $timestamp, $signature, $body)) {
        http_response_code(401);
        echo json_encode(['error' => 'bad signature or timestamp']);
        return;
    }
    $delivery = $_SERVER['HTTP_X_BRIDGE_DELIVERY'] ?? '';
    $callback = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
    $handle = fopen($appliedFile, 'c+');
    flock($handle, LOCK_EX); // one delivery applied once, even when two arrive together
    $applied = [];
    foreach (explode("\n", (string) stream_get_contents($handle)) as $line) {
        if (trim($line) !== '') {
            $applied[json_decode($line, true)['delivery']] = true;
        }
    }
    if ($delivery !== '' && isset($applied[$delivery])) {
        flock($handle, LOCK_UN);
        fclose($handle);
        echo json_encode(['applied' => false, 'reason' => 'already applied']);
        return;
    }
    // Apply: a real billing system updates the service here.
    fseek($handle, 0, SEEK_END);
    fwrite($handle, json_encode(['delivery' => $delivery] + $callback, JSON_UNESCAPED_SLASHES) . "\n");
    fflush($handle);
    flock($handle, LOCK_UN);
    fclose($handle);
    echo json_encode(['applied' => true]);
}

function main(array $argv): int
{
    $secret = (string) getenv('BRIDGE_INTAKE_SECRET');
    if (($argv[1] ?? '') !== 'create' || count($argv) !== 6) {
        fwrite(STDERR, "usage: php client.php create SERVICE_ID USERNAME EMAIL DOMAIN\n");
        return 2;
    }
    $client = new BridgeClient((string) (getenv('BRIDGE_URL') ?: 'http://127.0.0.1:8000'), $secret);
    $order = createOrder($argv[2], $argv[3], $argv[4], $argv[5], getenv('CALLBACK_URL') ?: null);
    $accepted = $client->submitOrder($order);
    $again = $client->submitOrder($order); // a retry after a timeout: the same order
    if ($again['id'] !== $accepted['id']) {
        fwrite(STDERR, "a repeated order was not recognised\n");
        return 1;
    }
    $final = $client->wait($accepted);
    echo json_encode(['order' => $final], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
    return $final['status'] === 'completed' ? 0 : 1;
}

// Run as a command or served as the callback receiver; included, it only defines.
if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    exit(main($argv));
}
if (PHP_SAPI !== 'cli') {
    receiveCallback((string) getenv('BRIDGE_INTAKE_SECRET'), (string) (getenv('APPLIED_FILE') ?: 'applied.txt'));
}
