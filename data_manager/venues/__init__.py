"""Sans-I/O venue processors: native text frames in, book changes out."""
