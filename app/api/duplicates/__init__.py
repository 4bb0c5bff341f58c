"""Possible duplicates of a project: listing, merging, dismissing; and its import history (PRISMA counts)."""
