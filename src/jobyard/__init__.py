"""jobyard: self-hosted background jobs for Python."""
