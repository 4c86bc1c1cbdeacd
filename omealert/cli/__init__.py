"""The ``omealert`` command line: the argparse front door, a module per command, exit codes."""
