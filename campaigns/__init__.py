"""Campaigns: templates, audiences, lifecycle, sending and the funnel export (issue 5)."""
