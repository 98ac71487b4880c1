"""The ESA edge: signed, paced, retrying API clients (ESA, STS, FC), credentials and the transport."""
