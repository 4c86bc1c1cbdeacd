"""``omealert test``: rule unit tests, their file format, series, runs, diffs, reports."""
