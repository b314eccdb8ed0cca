"""The command line's subcommands that live outside cnnlab.cli (which assembles them)."""
