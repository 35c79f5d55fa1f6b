# witpipe: build, test, bench, demo.
#
#   make            build build/witpipe (installs missing Debian packages first)
#   make test       unit + integration tests, then the same under ASan + UBSan
#   make bench      benchmarks, printed beside the anchors they must beat
#   make demo       the main job on the bundled demo corpus
#   make fuzz       build the fuzz targets (libFuzzer, clang)
#   make mutate     the mutation check of the suite (slow; not part of test)
#   make format / format-check
#
# Every library comes from pkg-config. Each top-level module folder holds its
# .c files; they all go into build/libwitpipe.a. Files named *_avx2.c,
# *_avx512.c and *_amx.c are SIMD kernels compiled with the matching -m flags and chosen
# at run time, so the binary runs on any x86-64.

BUILD   ?= build
CC      ?= cc
CXX     ?= c++
SAN     ?=
OPT     ?= -O2
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

MODULES := common catalog store image net kern clip emb parquet add crawl fetch dedup shard encode filter balance audit merge
PKGS    := libcurl libxml-2.0 libarchive sqlite3 libjpeg libturbojpeg spng libwebp libwebpdemux \
           libcrypto libutf8proc jansson libpsl zlib libdeflate libbrotlidec \
           snappy liblz4 libzstd
TESTPKGS := cmocka libmicrohttpd

# Debian 12 packages that provide the above, plus the tools tests use.
DEBS := build-essential pkg-config libcurl4-openssl-dev libxml2-dev libarchive-dev \
        libsqlite3-dev libjpeg62-turbo-dev libturbojpeg0-dev libspng-dev libwebp-dev \
        libssl-dev libutf8proc-dev libjansson-dev libpsl-dev zlib1g-dev libdeflate-dev libzstd-dev libbrotli-dev \
        libsnappy-dev liblz4-dev \
        libcmocka-dev libmicrohttpd-dev libsimde-dev libcld2-dev python3 python3-numpy python3-pil python3-scipy wget tar gzip xz-utils bzip2 zstd brotli \
        wordnet-base python3-ahocorasick python3-skimage chromium

# Only for tests/integration/test_slurm.py (a real single-node Slurm), never
# part of `make deps`: the test installs them itself (as root) or skips.
SLURM_DEBS := slurm-wlm munge libpmix-dev

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
CSTD    := -std=c11 -D_GNU_SOURCE
ifeq ($(SAN),1)
OPT     := -O1
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS = $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

CFLAGS  := $(CSTD) $(OPT) -g -fopenmp -pthread $(WARN) $(SANFLAGS) -I. -I$(BUILD)/gen
LDFLAGS := -fopenmp -pthread $(SANFLAGS)
# CLD2 (filter's language detection) has no pkg-config file and a C++ API
# only: filter/cld2_shim.cc wraps it for C, hence libstdc++.
LIBS     = $(PKG_LIBS) -lcld2 -lstdc++ -lm

LIB_SRC  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_CXX  := $(foreach m,$(MODULES),$(wildcard $(m)/*.cc))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o) $(BUILD)/gen/schema_sql.o \
            $(BUILD)/gen/filter_lists.o
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TL_SRC   := $(wildcard tests/lib/*.c)
TL_OBJ   := $(TL_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/t/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps bench-deps tests test check bench demo fuzz clean format format-check mutate
.SECONDARY:

all: deps $(BUILD)/witpipe

.PHONY: slurm-deps
# Installs SLURM_DEBS (as root), else prints the apt-get line.
slurm-deps:
	@if command -v slurmctld >/dev/null && command -v munged >/dev/null; then echo "slurm-deps: installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SLURM_DEBS) || \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SLURM_DEBS); }; \
	else echo "slurm-deps: run as root: apt-get install -y $(SLURM_DEBS)"; exit 1; fi

# Installs what is missing (as root), else prints the exact apt-get line.
deps:
	@missing=""; \
	pkg-config --exists $(PKGS) $(TESTPKGS) 2>/dev/null || missing=1; \
	for t in cc python3 wget tar gzip xz bzip2 zstd brotli chromium; do command -v $$t >/dev/null || missing=1; done; \
	/usr/bin/python3 -c "import numpy" 2>/dev/null || missing=1; \
	[ -f /usr/include/simde/x86/avx512.h ] || missing=1; \
	[ -f /usr/share/wordnet/data.noun ] || missing=1; \
	/usr/bin/python3 -c 'import ahocorasick' 2>/dev/null || missing=1; \
	[ -f /usr/include/cld2/public/compact_lang_det.h ] || missing=1; \
	/usr/bin/python3 -c 'import PIL, numpy, scipy' 2>/dev/null || missing=1; \
	[ -f /usr/lib/python3/dist-packages/skimage/data/motorcycle_right.png ] || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing Debian packages"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEBS) || \
	      { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	          $(filter-out chromium,$(DEBS)) && \
	        echo "deps: WARNING: chromium could not be installed; the audit's rendering test will SKIP"; }; }; \
	  else \
	    echo "deps: missing packages; run as root:"; \
	    echo "  apt-get install -y $(DEBS)"; exit 1; \
	  fi; \
	fi

$(BUILD)/gen/schema_sql.c: schemas/catalog.sql
	@mkdir -p $(@D)
	@{ echo '/* generated from schemas/catalog.sql by the Makefile */'; \
	   echo 'const char wp_schema_sql[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	   echo ';'; } > $@

# The filter's shipped lists, built in (filter/boilerplate.txt,
# filter/content_labels.txt); '?' escaped so that no trigraph forms.
$(BUILD)/gen/filter_lists.c: filter/boilerplate.txt filter/content_labels.txt
	@mkdir -p $(@D)
	@{ echo '/* generated from filter/boilerplate.txt and content_labels.txt by the Makefile */'; \
	   echo 'const char flt_boilerplate_txt[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' filter/boilerplate.txt; \
	   echo ';'; echo 'const char flt_content_labels_txt[] ='; \
	   sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' filter/content_labels.txt; \
	   echo ';'; } > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(OPT) -g -Wall -Wextra -Werror $(SANFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%_avx2.o: EXTRA_CFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/%_avx512.o: EXTRA_CFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c
$(BUILD)/%_amx.o: EXTRA_CFLAGS += -mamx-tile -mamx-bf16
$(BUILD)/tests/%.o: EXTRA_CFLAGS += $(TEST_CFLAGS)

$(BUILD)/libwitpipe.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/witpipe: $(CLI_OBJ) $(BUILD)/libwitpipe.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libwitpipe.a $(LIBS)

$(BUILD)/t/%: $(BUILD)/tests/unit/%.o $(TL_OBJ) $(BUILD)/libwitpipe.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(TL_OBJ) $(BUILD)/libwitpipe.a $(LIBS) $(TEST_LIBS)

# test_cli checks the command layer's option tables: it links cli/ itself,
# all but main.c.
CLI_LIB_OBJ := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))
$(BUILD)/t/test_cli: $(BUILD)/tests/unit/test_cli.o $(CLI_LIB_OBJ) $(TL_OBJ) $(BUILD)/libwitpipe.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(CLI_LIB_OBJ) $(TL_OBJ) $(BUILD)/libwitpipe.a $(LIBS) $(TEST_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(TL_OBJ) $(BUILD)/libwitpipe.a
	$(CC) $(LDFLAGS) -o $@ $< $(TL_OBJ) $(BUILD)/libwitpipe.a $(LIBS) $(TEST_LIBS)

tests: all $(UNIT_BIN) $(BUILD)/fixture_server

# The fixture HTTP server as a program, for integration tests and the bench.
$(BUILD)/fixture_server: $(BUILD)/tests/fixture_server.o $(TL_OBJ) $(BUILD)/libwitpipe.a
	$(CC) $(LDFLAGS) -o $@ $< $(TL_OBJ) $(BUILD)/libwitpipe.a $(LIBS) $(TEST_LIBS)

# The normal build, then the same suite with AddressSanitizer + UBSan; the
# last line printed is the runner's "tests: N passed, N failed" summary.
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) tests
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/asan SAN=1 tests
	@tests/run.sh build build/asan

# One build's suite only (quicker while working): make check [BUILD=...]
check: tests
	@tests/run.sh $(BUILD)

# Anchors only benchmarks use (faiss for dedup's k-means, with OpenBLAS so
# faiss is not measured on the reference BLAS); not needed to build or test.
BENCH_DEBS := python3-faiss libopenblas0-pthread

bench-deps:
	@/usr/bin/python3 -c 'import faiss' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(BENCH_DEBS); \
	  else echo "bench-deps: run as root: apt-get install -y $(BENCH_DEBS)"; fi; }

bench: deps bench-deps all $(BENCH_BIN)
	@bench/run.sh $(BUILD)

demo: all $(BUILD)/fixture_server
	@examples/demo.sh $(BUILD)/witpipe

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang against the
# library compiled with -fsanitize=fuzzer-no-link,address,undefined.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_DEBS := clang libclang-rt-14-dev libomp-14-dev
# fuzz_pipeline parses `witpipe run` configs, which live in cli/: it links
# the cli/ objects (all but main.c), built alongside the library.
FUZZ_CLI_OBJ := $(patsubst %.c,build/fuzz/%.o,$(filter-out cli/main.c,$(CLI_SRC)))
fuzz: deps
	@command -v clang >/dev/null && [ -f "$$(clang -print-resource-dir)/include/omp.h" ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(FUZZ_DEBS); \
	  else echo "fuzz: needs clang with OpenMP; run as root: apt-get install -y $(FUZZ_DEBS)"; exit 1; fi; }
	@$(MAKE) --no-print-directory -j$(JOBS) CC=clang CXX=clang++ BUILD=build/fuzz OPT=-O1 \
	  WARN="$(WARN) -Wno-unknown-warning-option" \
	  SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build/fuzz/libwitpipe.a $(FUZZ_CLI_OBJ)
	@mkdir -p build/fuzz/bin
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); \
	  extra=; [ $$n = fuzz_pipeline ] && extra="$(FUZZ_CLI_OBJ)"; \
	  echo "fuzz: build/fuzz/bin/$$n"; \
	  clang -std=c11 -D_GNU_SOURCE -O1 -g -I. -fsanitize=fuzzer,address,undefined -fopenmp \
	    $(PKG_CFLAGS) $$f $$extra build/fuzz/libwitpipe.a $(PKG_LIBS) -lcld2 -lstdc++ -lm -o build/fuzz/bin/$$n || exit 1; \
	done
	@echo "fuzz: run e.g. build/fuzz/bin/fuzz_image -max_total_time=60 /tmp/new tests/fuzz/corpus/image (see tests/fuzz/README.md)"

# The mutation check (tests/mutate/): each mutation in
# tests/mutate/mutations.txt applied alone to a scratch copy in /tmp, the
# normal build rebuilt there, the tests it names run; killed/survived
# reported. MUTATE_ARGS="--only ID,ID" or "--module net,crawl" for a subset.
mutate: tests
	@/usr/bin/python3 tests/mutate/mutate.py $(MUTATE_ARGS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "format-check: ok"

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TL_OBJ:.o=.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
