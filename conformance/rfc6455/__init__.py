"""RFC 6455 (and RFC 7692 permessage-deflate) conformance suite, run over real sockets."""
