"""The chaos run's parts (bench/chaos.py): settings, processes, workload, billing
client, chaos events and the final checks. Nothing in bridge/ imports this."""
