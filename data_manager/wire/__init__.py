"""The wire as a tool: record what crosses it, replay it through the same processors, check it offline,
and serve it (or the simulator) to any client.

    record.py          Recorder: a `WireTap` per connection, JSON Lines files, rotated by size
    records.py         the record format (below), reading recordings and foreign captures
    replay.py          a replay shell: a processor fed from a recording instead of a socket
    check.py           the offline data-quality check (a separate process that reads only files)
    serve_recording.py a recording served over WebSocket + HTTP, as the venue would
    forward.py         fixed local ports in front of the simulator's ephemeral ones
    options.py         --source live|sim|replay DIR..., --speed, --at, --record (parsed into args.source)
    commands.py        the `record`, `check` and `simulate` commands

The record format is the one of `../shared/captures/*.jsonl` (`ts`, `dir`, `data`), with a few fields and
directions added; see `records.py`. The package imports no venue: the registry says which processor
and which simulator serve a venue.
"""
