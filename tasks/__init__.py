"""Prefect tasks: each wraps one stage and is keyed on its artifact id (SPEC §7).

Prefect's own result caching is off (``NO_CACHE``): its INPUTS policy hashes path strings rather
than content and does not notice a deleted output. The artifact store decides hits instead, so a
task on unchanged inputs reads a manifest, logs "cache hit" and returns the artifact id.

Every module also exposes the plain function the task calls, which the CLI uses directly.
"""
