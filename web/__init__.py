"""The officers' web console: campaigns, participation, invites, sends, results, in a browser."""
