"""Call handlers: what runs when an endpoint places a call (its `call_handler`)."""
