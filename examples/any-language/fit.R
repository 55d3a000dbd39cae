# A jobyard command job in R: fit y ~ x by least squares.
# Contract: args in the JSON file $JOBYARD_ARGS, result JSON to $JOBYARD_RESULT, output lines
# are the job's log, "::progress FRACTION MESSAGE" lines set its progress, exit 0 = success.
library(jsonlite)

args <- fromJSON(Sys.getenv("JOBYARD_ARGS"))
if (length(args$x) != length(args$y) || length(args$x) < 2) {
  message("x and y must be lists of the same length, at least 2")
  quit(status = 3)
}
cat("::progress 0.1 read", length(args$x), "points\n")
model <- lm(y ~ x, data = data.frame(x = args$x, y = args$y))
cat("::progress 0.9 fitted\n")
fit <- summary(model)
result <- list(
  intercept = unname(coef(model)[1]),
  slope = unname(coef(model)[2]),
  r_squared = fit$r.squared,
  r_version = R.version.string
)
write(toJSON(result, auto_unbox = TRUE, digits = NA), Sys.getenv("JOBYARD_RESULT"))
cat("done\n")
