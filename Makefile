# pare - structural pruning of LLMs as small C programs. See README.md.
CC      ?= cc
PREFIX  ?= /usr/local
PARE_DATA ?= ../shared/data
export PARE_DATA

PKGS     = msgpack openblas jansson libarchive libxxhash libpcre2-8 libutf8proc
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
           -march=x86-64-v2 -Ilib $(shell pkg-config --cflags $(PKGS))
override LDLIBS += $(shell pkg-config --libs $(PKGS)) -lm -lpthread

BUILD   ?= build
LIB_SRC  = $(filter-out lib/base/cpu_loops.c lib/base/amx.c lib/base/gemm.c,$(sort $(wildcard lib/*/*.c)))
# lib/base/cpu_loops.c: pare's inner loops, built once per instruction set (base/cpu.h)
CPU_VARIANTS = baseline avx2 avx512 amx
CPU_FLAGS_baseline =
CPU_FLAGS_avx2   = -mavx2 -mfma -mf16c
CPU_FLAGS_avx512 = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512dq -mavx512vl
CPU_FLAGS_amx    = $(CPU_FLAGS_avx512) -mamx-tile -mamx-bf16
# lib/base/amx.c: the tile products, reached only through the amx table;
# lib/base/gemm.c: pare's own FMA product, built for avx2 and avx512, through those tables
GEMM_VARIANTS = avx2 avx512
LIB_OBJ  = $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o) $(CPU_VARIANTS:%=$(BUILD)/lib/base/cpu_loops-%.o) \
           $(BUILD)/lib/base/amx.o $(GEMM_VARIANTS:%=$(BUILD)/lib/base/gemm-%.o)
CMDS     = $(sort $(notdir $(wildcard cmd/*)))
PROGS    = $(CMDS:%=$(BUILD)/bin/pare-%)
FRONT    = $(BUILD)/bin/pare
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNITS    = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOLS_SRC= $(sort $(wildcard tests/tools/*.c))
TOOLS    = $(TOOLS_SRC:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_SRC= $(sort $(wildcard bench/*.c))
BENCHES  = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test unit bats check-asan bench bench-7b demo install clean fuzz fuzz-targets
all: $(filter-out $(BUILD)/bin/pare-pare,$(PROGS)) $(FRONT) $(TOOLS)

$(BUILD)/lib/%.o: lib/%.c lib/*/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/lib/base/cpu_loops-%.o: lib/base/cpu_loops.c lib/*/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPU_FLAGS_$*) -DCPU_VARIANT=$* -c -o $@ $<

$(BUILD)/lib/base/amx.o: lib/base/amx.c lib/*/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPU_FLAGS_amx) -c -o $@ $<

# unrolled: 2-8% faster than -O2 alone on a 7B layer's products
$(BUILD)/lib/base/gemm-%.o: lib/base/gemm.c lib/*/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPU_FLAGS_$*) -DCPU_VARIANT=$* -O3 -funroll-loops -c -o $@ $<

# Made anew, so that the object of a source file that is gone leaves with it.
$(BUILD)/libpare.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/pare-%: cmd/%/main.c $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpare.a $(LDFLAGS) $(LDLIBS)

$(FRONT): cmd/pare/main.c $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpare.a $(LDFLAGS) $(LDLIBS)

# The unit tests' shared parts: the reference model and the random fixtures.
UNIT_REF = $(BUILD)/tests/ref_llama.o $(BUILD)/tests/ref_chatglm.o $(BUILD)/tests/ref_distill.o $(BUILD)/tests/fixture.o
.SECONDARY: $(UNIT_REF)
$(BUILD)/tests/%.o: tests/unit/%.c tests/unit/%.h lib/*/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h tests/unit/ref_llama.h tests/unit/ref_chatglm.h tests/unit/ref_distill.h tests/unit/fixture.h $(UNIT_REF) $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(UNIT_REF) $(BUILD)/libpare.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/pare-reseal: tests/fuzz/reseal.h

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpare.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpare.a $(LDFLAGS) $(LDLIBS)

# Every test: C unit tests of lib/, then bats tests of the programs.
# The benchmarks are built (not run) by test, so that a change to lib/ cannot leave them behind.
test: all $(UNITS) $(BENCHES)
	@tests/run-unit $(UNITS)
	@PATH="$(CURDIR)/$(BUILD)/bin:$(CURDIR)/$(BUILD)/tests:$$PATH" BUILD=$(BUILD) tests/run-bats tests/bats

unit: all $(UNITS)
	@tests/run-unit $(UNITS)

bats: all
	@PATH="$(CURDIR)/$(BUILD)/bin:$(CURDIR)/$(BUILD)/tests:$$PATH" BUILD=$(BUILD) tests/run-bats tests/bats

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer targets, one per input format (tests/fuzz/README.md), built with clang
# under ASan and UBSan in $(FUZZ_BUILD); each runs FUZZ_SECONDS on seeds made from
# $(PARE_DATA) and from the streams the programs write.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS   = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_WRAP     = -Wl,--wrap=fopen,--wrap=fclose,--wrap=archive_read_new,--wrap=archive_read_free,--wrap=mmap,--wrap=munmap
FUZZ_SRC      = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%) $(BUILD)/fuzz/fuzz_stream_reseal

fuzz: all
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) CFLAGS="$(FUZZ_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" fuzz-targets
	tests/fuzz/run $(FUZZ_BUILD) $(BUILD) $(FUZZ_SECONDS)

fuzz-targets: $(FUZZ_BINS)

# the harness itself is not instrumented for coverage: its bookkeeping is no finding
$(BUILD)/fuzz-obj/harness.o: tests/fuzz/fuzz.c tests/fuzz/fuzz.h lib/base/util.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fno-sanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzz/fuzz_stream_reseal: tests/fuzz/fuzz_stream.c $(BUILD)/fuzz-obj/harness.o $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DFUZZ_RESEAL -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(BUILD)/fuzz-obj/harness.o $(BUILD)/libpare.a \
	    $(FUZZ_WRAP) $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz/fuzz_stream_reseal $(BUILD)/fuzz/fuzz_state: tests/fuzz/reseal.h
$(BUILD)/fuzz/fuzz_tokenizer $(BUILD)/fuzz/fuzz_hf_tokenizer: tests/fuzz/tokenizer_use.h

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(BUILD)/fuzz-obj/harness.o $(BUILD)/libpare.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(BUILD)/fuzz-obj/harness.o $(BUILD)/libpare.a \
	    $(FUZZ_WRAP) $(LDFLAGS) $(LDLIBS)

# The C benchmarks, then pare-eval against llama.cpp's llama-perplexity on the GGUF
# files of an 8-layer LLaMA-7B-shaped slice (made once in BENCH_DIR, default
# $(BUILD)/bench-llamacpp: 19 GB) and pare-score against PyTorch on it.
bench: all $(BENCHES)
	@for b in $(BENCHES); do $$b || exit 1; done
	@bench/bench-llamacpp $(BUILD)
	@bench/bench-tokenize $(BUILD)

# The pipeline on a random LLaMA-7B-shaped bf16 model (13.5 GB, made once in
# BENCH_DIR, default $(BUILD)/bench-7b): time, peak RSS, peak anonymous memory and
# bytes read of each stage (bench/memcap), under a memory cap with MEMCAP=8G, and
# PyTorch beside pare on a slice of it. Not part of test or CI (about an hour).
bench-7b: all
	@MEMCAP="$(MEMCAP)" bench/bench-7b $(BUILD)

demo: all
	@PATH="$(CURDIR)/$(BUILD)/bin:$$PATH" ./tools/demo

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(filter-out $(BUILD)/bin/pare-pare,$(PROGS)) $(FRONT) $(DESTDIR)$(PREFIX)/bin
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5

clean:
	rm -rf build build-asan build-clang build-fuzz
