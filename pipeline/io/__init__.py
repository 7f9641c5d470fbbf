"""What the stages read and write on disk: atomic writes and hashes, the score store, the shards.

Nothing here transforms music (that is `pipeline.music`); `gnm_model` reads the shards only
through this package (`pipeline.io.shards.open_shards`).
"""
