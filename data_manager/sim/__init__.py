"""The built-in exchange simulator: the other end of the wire, on 127.0.0.1."""
