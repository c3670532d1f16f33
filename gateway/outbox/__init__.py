"""The durable outbox: alert changes staged in their own transaction, routed to channels by
unit, level, kind and the duty roster, and delivered at least once (docs/delivery.md)."""
