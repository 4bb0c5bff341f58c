"""Database plumbing shared by every litscreen process: URLs, the embedded server, migrations, connections."""
