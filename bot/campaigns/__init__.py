"""Campaign files: reading, checking, loading, and the rules of a pass through a campaign."""
