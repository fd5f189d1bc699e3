"""The event chat: fans talk, organizers announce and moderate, live through the event's socket."""
