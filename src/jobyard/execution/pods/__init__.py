"""pod-per-job execution: every job in a fresh process of its own.

`launcher` takes queued jobs of a pool from the database and starts each through a runner
(`local`: a process group on this machine); `run_job` is what runs inside that process; the
job process talks back only through its output lines (`stream`), so it needs no database or
broker credentials.
"""
