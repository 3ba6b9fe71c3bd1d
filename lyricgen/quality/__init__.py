"""What the models write, measured against real songs: the lyrics scorecard and an independent genre judge."""
