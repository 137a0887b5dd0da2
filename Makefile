# mv - one non-recursive build.  `make` builds libmv/libmv.a and cmd/*/mv-*;
# `make check` runs the unit tests and the bats suite; `make demo` runs the
# quick-start demo.  Local overrides go in config.mk.
-include config.mk

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

ifeq ($(shell id -u),0)
MV_DEPS ?= /var/cache/mv-deps
else
MV_DEPS ?= $(HOME)/.cache/mv-deps
endif
FAISS_DIR ?= $(MV_DEPS)/faiss-1.7.3
# The AVX2 build where it was made (scripts/deps.sh), else libfaiss.a (its
# generic build, found before Debian's).
FAISS_CORE ?= $(if $(wildcard $(FAISS_DIR)/lib/libfaiss_avx2.a),-lfaiss_avx2,-lfaiss)
FAISS_LIBS ?= -L$(FAISS_DIR)/lib -lfaiss_c $(FAISS_CORE) -lopenblas -lgomp
FAISS_CFLAGS ?= -isystem $(FAISS_DIR)/include
# FAISS built with mv's patches (scripts/faiss-patches/) when deps.sh's stamp
# names their checksum: then searches at different ef need no lock.
FAISS_PATCHSUM := $(shell cat scripts/faiss-patches/*.patch 2>/dev/null | sha256sum | cut -c1-12)
FAISS_PATCHED ?= $(if $(wildcard $(FAISS_DIR)/.done-$(FAISS_PATCHSUM)),-DMV_FAISS_PATCHED)

CC       ?= cc
CXX      ?= c++
OPTFLAGS ?= -O2 -march=x86-64-v2
CFLAGS   ?= $(OPTFLAGS) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-sign-compare -pthread -MMD -MP -Ilibmv
CXXFLAGS ?= $(OPTFLAGS) -g
CXXFLAGS += -std=c++11 -Wall -Wextra -pthread -MMD -MP -Ilibmv $(FAISS_CFLAGS) -I/usr/include
CFLAGS   += $(FAISS_PATCHED)
CXXFLAGS += $(FAISS_PATCHED)
LDLIBS   += $(FAISS_LIBS) -lzstd -ljansson -lcurl -lcrypto -lstdc++ -lm -pthread
LDFLAGS  ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_C   := $(wildcard libmv/*.c)
LIB_CXX := $(wildcard libmv/*.cpp)
LIB_OBJ := $(LIB_C:.c=.o) $(LIB_CXX:.cpp=.o)
LIB     := libmv/libmv.a
# The engine (libmv/engine/): mv-noded and the unit runner link it.
ENG_C   := $(wildcard libmv/engine/*.c)
ENG_OBJ := $(ENG_C:.c=.o)
ENG_LIB := libmv/libmvengine.a

CMDS := $(notdir $(wildcard cmd/mv-*))
BINS := $(foreach c,$(CMDS),cmd/$(c)/$(c))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := tests/unit/run-unit

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:.c=)

all: $(LIB) $(ENG_LIB) $(BINS)

# Objects are built again when the flags change (make asan, then make):
# build/flags holds the flags the objects were built with.
FLAGS_STAMP := build/flags
FLAGS_NOW   := $(CC) $(CXX) $(CFLAGS) | $(CXXFLAGS) | $(LDFLAGS)
ifneq ($(FLAGS_NOW),$(shell cat $(FLAGS_STAMP) 2>/dev/null))
$(shell mkdir -p build && printf '%s\n' '$(FLAGS_NOW)' > $(FLAGS_STAMP))
endif

$(LIB): $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(ENG_LIB): $(ENG_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

%.o: %.c $(FLAGS_STAMP)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

%.o: %.cpp $(FLAGS_STAMP)
	@echo "  CXX     $@"
	$(Q)$(CXX) $(CXXFLAGS) -c $< -o $@

define cmd_rule
cmd/$(1)/$(1): $$(patsubst %.c,%.o,$$(wildcard cmd/$(1)/*.c)) $$(if $$(filter mv-noded,$(1)),$$(ENG_LIB)) $$(LIB)
	@echo "  LINK    $$@"
	$$(Q)$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach c,$(CMDS),$(eval $(call cmd_rule,$(c))))

# pwrite is wrapped so that a test can play a filesystem refusing O_DIRECT.
$(UNIT_BIN): $(UNIT_SRC:.c=.o) $(ENG_LIB) $(LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=pwrite -o $@ $^ $(LDLIBS)
# ftruncate too, so that a test can make the metadata log's cut fail.
$(UNIT_BIN): override LDFLAGS += -Wl,--wrap=ftruncate
# And the allocators, so that a test can fail the Nth (test_failalloc.c).
$(UNIT_BIN): override LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

# $< and the library, not $^: a bench that #includes a .c file (idmap.c)
# gets it listed as a prerequisite by its .d file, and linked twice.
bench/%: bench/%.c $(LIB)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

bench: $(BENCH_BIN) all
	@bash bench/run.sh

bench-cluster: $(BENCH_BIN) all
	@bash bench/cluster.sh

# mv against FAISS, hnswlib and LanceDB (bench/peers.sh installs the peers
# with scripts/bench-deps.sh); -quick: a subset, a few minutes.
bench-peers: $(BENCH_BIN) all
	@bash bench/peers.sh

bench-peers-quick: $(BENCH_BIN) all
	@bash bench/peers.sh --quick

# 8 clients at mixed ef / nprobe against one (issue 9).
bench-mixed: bench/mixed all
	@bash bench/mixed.sh

deps:
	@sh scripts/deps.sh

unit: $(UNIT_BIN)
	OMP_WAIT_POLICY=PASSIVE ./$(UNIT_BIN)

bats: all
	OMP_WAIT_POLICY=PASSIVE bats --print-output-on-failure tests/

# The README's test command: set up what is missing, build, run everything,
# and end with the runner's "N passed, N failed" line.
check: all $(UNIT_BIN)
	@sh scripts/check.sh

test: check

# The engine's files must call each other in layers (scripts/layers.sh).
layers: $(ENG_LIB)
	@sh scripts/layers.sh

demo: all
	@sh scripts/demo.sh

lint:
	mandoc -Tlint -Wwarning man/* || true

# The whole suite under AddressSanitizer (with LeakSanitizer) and UBSan;
# leaks of FAISS/OpenBLAS are suppressed in tests/lsan.supp.  The fuzz
# targets are left out: they are built with ASan/UBSan already.  FAISS
# allocates through ASan's allocator (a 16 MiB mmap per k-means step):
# index builds take minutes, so a tool may take 900 s (MV_TIMEOUT).
asan:
	$(MAKE) clean
	ASAN_OPTIONS=detect_leaks=1 MV_TIMEOUT=900 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 MV_CHECK_FUZZ=0 \
	$(MAKE) OPTFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" check

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	for m in man/*.[1578]; do install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}; done

uninstall:
	for b in $(CMDS); do rm -f $(DESTDIR)$(BINDIR)/$$b; done
	for m in man/*.[1578]; do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done

clean:
	rm -f $(LIB) $(LIB_OBJ) $(ENG_LIB) $(ENG_OBJ) $(BINS) $(UNIT_BIN) $(BENCH_BIN) \
		$(shell find libmv cmd tests bench -name '*.o' -o -name '*.d' 2>/dev/null)

.PHONY: all bench bench-cluster bench-peers bench-peers-quick deps unit bats test check layers demo lint asan install uninstall clean bench-mixed
-include $(shell find libmv cmd tests bench -name '*.d' 2>/dev/null)

# ---- fuzzing (tests/fuzz/README) -------------------------------------
# libFuzzer targets built with clang into build/fuzz/, apart from the gcc
# build: `make fuzz` builds them and runs each for FUZZ_SECONDS;
# `make fuzz-build` only builds; `make fuzz-smoke` is check.sh's short run.
FUZZ_CC      ?= $(shell command -v clang-14 || command -v clang || echo clang-14)
FUZZ_SECONDS ?= 60
FUZZ_OUT     := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -std=c11 \
	-D_GNU_SOURCE -Wall -Wextra -Wno-sign-compare -pthread -Ilibmv \
	-DMV_VECIO_CHUNK=64u
FUZZ_LIBS    := -lzstd -ljansson -lcurl -lm -pthread
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
FUZZ_BINS    := $(addprefix $(FUZZ_OUT)/,$(FUZZ_TARGETS))
FUZZ_LIB_OBJ := $(patsubst libmv/%.c,$(FUZZ_OUT)/libmv/%.o,$(LIB_C))

$(FUZZ_OUT)/libmv/%.o: libmv/%.c
	@mkdir -p $(@D)
	@echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

# The linker takes from the archive only the objects a target needs.
$(FUZZ_OUT)/libmv-fuzz.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# fuzz_strblock also takes the engine's segment.c (its decoder) and util.c.
$(FUZZ_OUT)/engine/%.o: libmv/engine/%.c
	@mkdir -p $(@D)
	@echo "  FUZZCC  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_OUT)/fuzz_strblock: $(FUZZ_OUT)/engine/segment.o $(FUZZ_OUT)/engine/util.o

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OUT)/libmv-fuzz.a
	@mkdir -p $(@D)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(filter %.o,$^) $(FUZZ_OUT)/libmv-fuzz.a $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@FUZZ_SEED=1 sh tests/fuzz/run.sh 3 $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_OUT)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean
-include $(wildcard $(FUZZ_OUT)/libmv/*.d $(FUZZ_OUT)/engine/*.d)

# Regenerate the binary seeds (segment files, meta.log) of the corpus.
fuzz-seeds: $(FUZZ_OUT)/libmv-fuzz.a
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $(FUZZ_OUT)/seeds tests/fuzz/seeds.c \
		$(FUZZ_OUT)/libmv-fuzz.a $(FUZZ_LIBS)
	$(Q)./$(FUZZ_OUT)/seeds tests/fuzz/corpus

.PHONY: fuzz-seeds
