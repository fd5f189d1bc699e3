"""Webhooks: organizers register HTTPS endpoints and receive their events' domain events, signed."""
