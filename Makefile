# tinytemp: PGXS build of the extension, the worker program and the project's own targets

EXTENSION = tinytemp
MODULE_big = tinytemp
OBJS = \
	src/access.o \
	src/bgworker.o \
	src/claim.o \
	src/clock.o \
	src/datasets.o \
	src/jobs.o \
	src/metrics.o \
	src/metrics_http.o \
	src/model_codec.o \
	src/notify.o \
	src/planner.o \
	src/policy.o \
	src/predictor.o \
	src/shmem.o \
	src/synthetic.o \
	src/tinytemp.o \
	src/tracking.o \
	src/util.o \
	src/validate.o \
	src/workers.o
DATA = tinytemp--0.1.sql tinytemp--0.1--0.2.sql tinytemp--0.2--0.3.sql tinytemp--0.3--0.4.sql \
	tinytemp--0.4--0.5.sql tinytemp--0.5--0.6.sql \
	tinytemp--0.6--0.7.sql tinytemp--0.7--0.8.sql
PGFILEDESC = "tinytemp - a job scheduler for machine-learning workloads"

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --use-existing

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every source includes this one.  (After
# the include, so that PGXS's "all" stays the default target.)
$(OBJS): src/tinytemp.h
src/predictor.o src/model_codec.o: src/model_codec.h

# The test script creates this database before starting the background worker in it.
CONTRIB_TESTDB = tinytemp_regress

# The worker program (worker_client/) is built and installed with the extension,
# into PostgreSQL's bindir as PGXS does for a PROGRAM.
all: worker
install: install-worker
clean: clean-worker

.PHONY: worker install-worker clean-worker
worker:
	$(MAKE) -C worker_client PG_CONFIG=$(PG_CONFIG)
install-worker: worker
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) worker_client/tinytemp-worker '$(DESTDIR)$(bindir)/tinytemp-worker'
clean-worker:
	$(MAKE) -C worker_client clean

.PHONY: test demo bench simulate bench-sim clean-simulate
test:
	scripts/test.sh
demo:
	scripts/demo.sh
bench:
	bench/queue_bench.sh
# The trace-driven simulator and its benchmark (fifo against tinytemp).
simulate:
	$(MAKE) -C bench PG_CONFIG=$(PG_CONFIG)
bench-sim:
	bench/sim_bench.sh
clean: clean-simulate
clean-simulate:
	$(MAKE) -C bench clean
