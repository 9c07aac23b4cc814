<?php
/**
 * A stand-in for WHMCS's init.php: the few WHMCS functions and classes the module
 * calls (localAPI, logModuleCall, WHMCS\Database\Capsule), recording every call in a
 * JSON state file (WHMCS_STANDIN_STATE) shared by the test process and the web
 * server that serves callback.php. Not WHMCS: only what the module needs.
 */

declare(strict_types=1);

namespace {
    if (!defined('WHMCS')) {
        define('WHMCS', true);
    }

    function standin_state_path(): string
    {
        $path = getenv('WHMCS_STANDIN_STATE');
        if ($path === false || $path === '') {
            throw new RuntimeException('WHMCS_STANDIN_STATE is not set');
        }
        return $path;
    }

    /** Run $change on the state under an exclusive lock; returns its result. */
    function standin_transaction(callable $change): mixed
    {
        $handle = fopen(standin_state_path(), 'c+');
        flock($handle, LOCK_EX);
        $raw = stream_get_contents($handle);
        $state = $raw === '' ? [] : json_decode($raw, true, 512, JSON_THROW_ON_ERROR);
        $state += ['tables' => [], 'calls' => [], 'modulelog' => []];
        $result = $change($state);
        ftruncate($handle, 0);
        rewind($handle);
        fwrite($handle, json_encode($state, JSON_PRETTY_PRINT));
        fflush($handle);
        flock($handle, LOCK_UN);
        fclose($handle);
        return $result;
    }

    function localAPI(string $command, array $values = [], ?string $adminUser = null): array
    {
        return standin_transaction(function (array &$state) use ($command, $values): array {
            $state['calls'][] = ['command' => $command, 'values' => $values];
            if ($command === 'DecryptPassword') {
                // The stand-in stores server passwords in clear.
                return ['result' => 'success', 'password' => (string) $values['password2']];
            }
            if ($command === 'UpdateClientProduct') {
                foreach ($state['tables']['tblhosting'] ?? [] as $i => $row) {
                    if ((int) $row['id'] === (int) $values['serviceid']) {
                        if (isset($values['status'])) {
                            $state['tables']['tblhosting'][$i]['domainstatus'] = $values['status'];
                        }
                        return ['result' => 'success', 'serviceid' => $values['serviceid']];
                    }
                }
                return ['result' => 'error', 'message' => 'Service ID Not Found'];
            }
            return ['result' => 'error', 'message' => "stand-in has no $command"];
        });
    }

    function logModuleCall(string $module, string $action, mixed $request, mixed $response, mixed $processed = null, array $replace = []): void
    {
        $text = json_encode(['request' => $request, 'response' => $response]);
        foreach ($replace as $secret) {
            if ($secret !== '') {
                $text = str_replace($secret, '********', $text);
            }
        }
        standin_transaction(function (array &$state) use ($module, $action, $text): void {
            $state['modulelog'][] = ['module' => $module, 'action' => $action, 'data' => $text];
        });
    }
}

namespace WHMCS\Database {
    /** Just enough of Laravel's query builder, over the stand-in's JSON tables. */
    final class Query
    {
        /** @var list<array{string, string, mixed}> [column, operator, value] */
        private array $wheres = [];
        private ?int $limit = null;

        public function __construct(private string $table)
        {
        }

        /** where(column, value) or where(column, operator, value), as Laravel's. */
        public function where(string $column, mixed $operator, mixed $value = null): self
        {
            $this->wheres[] = func_num_args() === 2 ? [$column, '=', $operator] : [$column, (string) $operator, $value];
            return $this;
        }

        public function whereIn(string $column, array $values): self
        {
            $this->wheres[] = [$column, 'in', $values];
            return $this;
        }

        public function limit(int $count): self
        {
            $this->limit = $count;
            return $this;
        }

        private function matches(array $row): bool
        {
            foreach ($this->wheres as [$column, $operator, $value]) {
                $held = $row[$column] ?? null;
                $ok = match ($operator) {
                    '=' => (string) $held === (string) $value,
                    'in' => in_array((string) $held, array_map('strval', $value), true),
                    // Only what the module compares: 'Y-m-d H:i:s' strings; NULL matches nothing.
                    '<' => $held !== null && (string) $held < (string) $value,
                    default => throw new \LogicException("stand-in has no operator $operator"),
                };
                if (!$ok) {
                    return false;
                }
            }
            return true;
        }

        /** @return list<int> the indexes of the matching rows, at most $this->limit */
        private function matching(array $rows): array
        {
            $found = array_keys(array_filter($rows, [$this, 'matches']));
            return $this->limit === null ? $found : array_slice($found, 0, $this->limit);
        }

        public function get(): array
        {
            return \standin_transaction(function (array &$state): array {
                $rows = $state['tables'][$this->table] ?? [];
                return array_map(fn (int $i): object => (object) $rows[$i], $this->matching($rows));
            });
        }

        public function first(): ?object
        {
            return $this->get()[0] ?? null;
        }

        public function value(string $column): mixed
        {
            $row = $this->first();
            return $row === null ? null : ($row->$column ?? null);
        }

        public function insert(array $row): bool
        {
            \standin_transaction(function (array &$state) use ($row): void {
                $state['tables'][$this->table][] = $row;
            });
            return true;
        }

        /** Insert unless a row has the same first column (the primary key). */
        public function insertOrIgnore(array $row): int
        {
            $key = array_key_first($row);
            return \standin_transaction(function (array &$state) use ($row, $key): int {
                foreach ($state['tables'][$this->table] ?? [] as $existing) {
                    if ((string) ($existing[$key] ?? '') === (string) $row[$key]) {
                        return 0;
                    }
                }
                $state['tables'][$this->table][] = $row;
                return 1;
            });
        }

        public function update(array $values): int
        {
            return \standin_transaction(function (array &$state) use ($values): int {
                $count = 0;
                foreach ($state['tables'][$this->table] ?? [] as $i => $row) {
                    if ($this->matches($row)) {
                        $state['tables'][$this->table][$i] = $values + $row;
                        $count++;
                    }
                }
                return $count;
            });
        }

        public function delete(): int
        {
            return \standin_transaction(function (array &$state): int {
                $rows = $state['tables'][$this->table] ?? [];
                $doomed = $this->matching($rows);
                $state['tables'][$this->table] = array_values(array_diff_key($rows, array_flip($doomed)));
                return count($doomed);
            });
        }
    }

    final class Blueprint
    {
        public function __call(string $name, array $arguments): self
        {
            return $this; // column definitions: the JSON tables are schemaless
        }
    }

    final class Schema
    {
        public function hasTable(string $table): bool
        {
            return \standin_transaction(fn (array &$state): bool => array_key_exists($table, $state['tables']));
        }

        public function create(string $table, callable $define): void
        {
            $define(new Blueprint());
            \standin_transaction(function (array &$state) use ($table): void {
                $state['tables'][$table] ??= [];
            });
        }
    }

    final class Capsule
    {
        public static function table(string $table): Query
        {
            return new Query($table);
        }

        public static function schema(): Schema
        {
            return new Schema();
        }
    }
}
