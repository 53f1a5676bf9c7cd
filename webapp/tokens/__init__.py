"""Personal access tokens: scripts call the JSON API with ``Authorization: Bearer khp_...``."""
