"""STOMP conformance suite: stomp.py, @stomp/stompjs and a raw-frame client against the broker."""
