"""Leaderboard: result schema, validated submissions and rendered boards (issue #7)."""
