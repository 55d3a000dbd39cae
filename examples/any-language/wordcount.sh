#!/bin/sh
# A jobyard command job in POSIX shell: count the words of the "text" argument.
# Contract: args in the JSON file $JOBYARD_ARGS, result JSON to $JOBYARD_RESULT, output lines
# are the job's log, "::progress FRACTION MESSAGE" lines set its progress, exit 0 = success.
set -eu
echo "::progress 0.5 counting"
# No JSON tool is assumed: the args file is {"text": "..."} with no escaped quotes.
text=$(sed -e 's/.*"text"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/' "$JOBYARD_ARGS")
words=$(printf '%s\n' "$text" | wc -w | tr -d ' ')
echo "counted $words words"
printf '{"words": %s}\n' "$words" > "$JOBYARD_RESULT"
