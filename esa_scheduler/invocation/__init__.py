"""One invocation: events, holds, reconcile, notifications and fleet fan-out, with their state."""
