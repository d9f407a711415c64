# node: one executable, every role of a small compute cluster.
# make | make test | make demo | make bench | make fuzz | make install
# make lib: the C client library libnodeclient (.a and .so) and <node/client.h>;
# make examples: the C programs of conf/examples, linked against it.
# SAN=1 builds with AddressSanitizer + UBSan into build-san/.

CC ?= cc
PREFIX ?= /usr/local
SAN ?= 0

ifeq ($(SAN),1)
BUILD := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD := build
SANFLAGS :=
OPT := -O2 -g
endif

CFLAGS ?= $(OPT)
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -pthread $(SANFLAGS) -I. -Imodules
CFLAGS += $(shell pkg-config --cflags libcjson liblz4 2>/dev/null)
LDLIBS := -lnng -lmbedtls -lmbedx509 -lmbedcrypto $(shell pkg-config --libs libcjson liblz4 2>/dev/null || echo -lcjson -llz4) -lpthread -lm -ldl
LDFLAGS += $(SANFLAGS) -pthread

CORE_SRC := $(sort $(wildcard modules/core/*.c))
MOD_SRC := $(sort $(wildcard modules/*.c modules/*/*.c))
MOD_SRC := $(filter-out modules/core/%,$(MOD_SRC))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
MOD_OBJ := $(MOD_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/*_test.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
HDRS := $(wildcard modules/core/*.h modules/*.h modules/*/*.h)

.PHONY: all deps test demo bench fuzz install clean lint-man check-deps lib examples plugins

all: check-deps node lib examples

check-deps:
	@vendor/deps.sh check

node: $(BUILD)/node
	@if [ "$(SAN)" = 1 ]; then ln -sf $(BUILD)/node node-san; else cp -f $(BUILD)/node node; fi

$(BUILD)/node: $(BUILD)/node.o $(MOD_OBJ) $(CORE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LDLIBS)

# job_test links the job parser itself (an explicit rule: the pattern rule links only core)
$(BUILD)/tests/job_test: tests/unit/job_test.c $(BUILD)/modules/mapreduce/job.o $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/modules/mapreduce/job.o $(CORE_OBJ) $(LDLIBS)

# mr_test links the MapReduce data plane besides core (not job.c: the master's)
MR_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(addprefix modules/mapreduce/,kv.c run.c merge.c builtin.c out.c wcount.c))
$(BUILD)/tests/mr_test: tests/unit/mr_test.c $(MR_OBJ) $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(MR_OBJ) $(CORE_OBJ) $(LDLIBS)

# the worker's MapReduce tasks: tasks_test (tasks.c registers mr.map and
# mr.reduce) and mrtask_test link them with the data plane and the job parser
MRTASK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(addprefix modules/mapreduce/,task_map.c task_reduce.c input.c \
	stream.c plugin.c fetch.c serve.c host.c job.c)) $(MR_OBJ)
$(BUILD)/tests/tasks_test: tests/unit/tasks_test.c modules/worker/tasks.c modules/worker/tasks.h $(MRTASK_OBJ) $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(MRTASK_OBJ) $(CORE_OBJ) $(LDLIBS)
$(BUILD)/tests/mrtask_test: tests/unit/mrtask_test.c $(MRTASK_OBJ) $(CORE_OBJ) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(MRTASK_OBJ) $(CORE_OBJ) $(LDLIBS)
# taskloop compiles tasks.c in too
$(BUILD)/tools/taskloop: tests/tools/taskloop.c modules/worker/tasks.c modules/worker/tasks.h $(MRTASK_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(MRTASK_OBJ) $(CORE_OBJ) $(LDLIBS)

# wc_baseline counts with the word-count kernel of the wordcount map
$(BUILD)/tools/wc_baseline: tests/tools/wc_baseline.c $(BUILD)/modules/mapreduce/wcount.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/modules/mapreduce/wcount.o $(CORE_OBJ) $(LDLIBS)

# the benchmarks next to a bare nng REQ/REP pair share its server and client
$(BUILD)/tools/bench_chan $(BUILD)/tools/bench_rpc: tests/tools/bare_rep.h

$(BUILD)/tools/%: tests/tools/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LDLIBS)

# ---- libnodeclient: modules/client plus the core it needs (not cmd.c) ----
VERSION := $(shell sed -n 's/^\#define NODE_VERSION "\(.*\)"/\1/p' modules/core/version.h)
LIB_SRC := $(sort $(wildcard modules/client/*.c)) $(filter-out modules/core/cmd.c,$(CORE_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_PIC := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIB_A := $(BUILD)/libnodeclient.a
LIB_SO := $(BUILD)/libnodeclient.so
LIB_H := $(BUILD)/include/node/client.h $(BUILD)/include/node/csp.h
# Programs that use the library see only the installed header, as users do.
EX_SRC := $(sort $(wildcard conf/examples/*.c))
EX_BIN := $(EX_SRC:conf/examples/%.c=$(BUILD)/examples/%)
EX_CFLAGS := $(OPT) -std=c11 -Wall -Wextra -Wshadow -pthread $(SANFLAGS) -I$(BUILD)/include

lib: $(LIB_A) $(LIB_SO) $(LIB_H)
examples: $(EX_BIN)

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pic/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c -o $@ $<

# Exports only ncl_* (nodeclient.map); soname libnodeclient.so.0.
$(LIB_SO): $(LIB_PIC) modules/client/nodeclient.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libnodeclient.so.0 -Wl,--version-script=modules/client/nodeclient.map \
		-Wl,--no-undefined -o $@.0 $(LIB_PIC) $(LDLIBS)
	ln -sf libnodeclient.so.0 $@

$(BUILD)/include/node/client.h: modules/client/nodeclient.h
	@mkdir -p $(dir $@)
	cp $< $@

# <node/csp.h> includes its neighbour client.h (nodeclient.h in the tree).
CSP_H_SED := sed 's/^\#include "nodeclient.h"/\#include "client.h"/'
$(BUILD)/include/node/csp.h: modules/client/nodecsp.h
	@mkdir -p $(dir $@)
	$(CSP_H_SED) $< >$@

# <node/mapreduce.h>: the ABI of MapReduce plugins (node-tasks(7))
$(BUILD)/include/node/mapreduce.h: modules/mapreduce/nodemr.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/examples/%: conf/examples/%.c $(LIB_A) $(LIB_H)
	@mkdir -p $(dir $@)
	$(CC) $(EX_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tools/client_test: tests/tools/client_test.c tests/tools/libcheck.h $(LIB_A) $(LIB_H)
	@mkdir -p $(dir $@)
	$(CC) $(EX_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tools/rpc_client: tests/tools/rpc_client.c tests/tools/libcheck.h $(LIB_A) $(LIB_H)
	@mkdir -p $(dir $@)
	$(CC) $(EX_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# the CSP API's test and benchmarks: users' programs, installed headers only
# (bench_chan also talks bare nng, as a user's program could)
$(BUILD)/tools/csp_test $(BUILD)/tools/bench_csp $(BUILD)/tools/bench_chan: $(BUILD)/tools/%: tests/tools/%.c tests/tools/libcheck.h $(LIB_A) $(LIB_H)
	@mkdir -p $(dir $@)
	$(CC) $(EX_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# ---- rpc plugins: conf/plugins/NAME.c -> $(BUILD)/plugins/NAME.so ----
# Built as users build theirs: only <node/rpc_plugin.h>, no node library
# (--no-undefined proves it); a plugin may link what it needs itself.
PLUGIN_SRC := $(sort $(wildcard conf/plugins/*.c))
PLUGIN_SO := $(PLUGIN_SRC:conf/plugins/%.c=$(BUILD)/plugins/%.so)
PLUGIN_H := $(BUILD)/include/node/rpc_plugin.h

plugins: $(PLUGIN_SO)
# MapReduce plugins (mr_*.c) include <node/mapreduce.h>
$(filter $(BUILD)/plugins/mr_%,$(PLUGIN_SO)): $(BUILD)/include/node/mapreduce.h

$(PLUGIN_H): modules/rpc/rpc_plugin.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/plugins/%.so: conf/plugins/%.c $(PLUGIN_H)
	@mkdir -p $(dir $@)
	$(CC) $(EX_CFLAGS) -fPIC -shared $(LDFLAGS) -Wl,--no-undefined -o $@ $< $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson) -lpthread

deps:
	@vendor/deps.sh install-test

test: deps
	@$(MAKE) --no-print-directory node units tools lib examples
	@NODE_BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

units: $(UNIT_BIN)
# tests/client runs the library's test program, the examples and the .so
tools: $(TOOL_BIN) lib examples plugins

demo:
	@vendor/deps.sh install
	@$(MAKE) --no-print-directory node
	@conf/examples/demo.sh ./node

bench: deps
	@$(MAKE) --no-print-directory node tools
	@NODE_BUILD=$(BUILD) tests/bench/run.sh

lint-man:
	@for m in man/*.[1-9]; do mandoc -Tlint -Wwarning $$m || exit 1; done

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/*_fuzz.c))
FUZZ_SECONDS ?= 60
fuzz: deps $(FUZZ_TARGETS)
	@for f in $(FUZZ_TARGETS); do \
		mkdir -p build-fuzz/corpus-$$(basename $$f); \
		echo "fuzzing $$f for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus-$$(basename $$f) tests/fuzz/seeds/$$(basename $$f) || exit 1; \
	done

build-fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(HDRS)
	@mkdir -p build-fuzz
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. -Imodules $(shell pkg-config --cflags libcjson liblz4) \
		-o $@ $< $(CORE_SRC) $(LDLIBS)

install: node lib
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 node $(DESTDIR)$(PREFIX)/bin/node
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	for c in submit result status revoke queues workers dead; do \
		ln -sf node-task.1 $(DESTDIR)$(PREFIX)/share/man/man1/node-$$c.1; done
	ln -sf node-pub.1 $(DESTDIR)$(PREFIX)/share/man/man1/node-sub.1
	install -d $(DESTDIR)$(PREFIX)/include/node $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 modules/client/nodeclient.h $(DESTDIR)$(PREFIX)/include/node/client.h
	$(CSP_H_SED) modules/client/nodecsp.h >$(DESTDIR)$(PREFIX)/include/node/csp.h
	chmod 644 $(DESTDIR)$(PREFIX)/include/node/csp.h
	install -m 644 modules/rpc/rpc_plugin.h $(DESTDIR)$(PREFIX)/include/node/rpc_plugin.h
	install -m 644 modules/mapreduce/nodemr.h $(DESTDIR)$(PREFIX)/include/node/mapreduce.h
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/libnodeclient.a
	install -m 755 $(LIB_SO).0 $(DESTDIR)$(PREFIX)/lib/libnodeclient.so.0
	ln -sf libnodeclient.so.0 $(DESTDIR)$(PREFIX)/lib/libnodeclient.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
		'Name: nodeclient' 'Description: C client library of node clusters: futures, map, map-reduce, remote objects, CSP channels' \
		'Version: $(VERSION)' 'Requires.private: libcjson liblz4' 'Cflags: -I$${includedir}' \
		'Libs: -L$${libdir} -lnodeclient' 'Libs.private: -lnng -lmbedtls -lmbedx509 -lmbedcrypto -lpthread -lm -ldl' \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/nodeclient.pc

clean:
	rm -rf build build-san build-fuzz node node-san
