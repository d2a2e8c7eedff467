# Runs first on every reset. Keep it tiny: anything that fails here leaves no REPL.
import gc

gc.collect()
