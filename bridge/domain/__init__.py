"""Pure domain: statuses, transitions, order specs, the planner, the retry policy."""
