"""Demo data: a ready-made venue to try the ticketing flow with."""
