"""Analytics: projections of the event stream and the organizer's live dashboard."""
