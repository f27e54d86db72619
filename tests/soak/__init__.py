"""The soak: logship for hours through outages, restarts, kills and a shaped link, with
plots (`make soak`; its 10-minute form in `make test-slow`)."""
