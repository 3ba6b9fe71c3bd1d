"""Text in, ids out: the corpora, lyrics hygiene, duplicate songs, the lyrics CSV step, the id cache, the
windows and the LightningDataModule, splits and the public stand-in. Nothing here knows of models."""
