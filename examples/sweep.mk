# sweep.mk - a sweep of pruning ratios x criteria through prune -> lora -> eval,
# one folder per point, run in parallel with make -j:
#
#   make -j8 -f examples/sweep.mk RATIOS="0.2 0.5" CRITERIA="l1 l2 random"
#
# groups.pare (pare-discover) and scores.pare (pare-score, on CALIB) are made
# once and serve every point; the default ratios, 0.2, 0.5 and 0.7, go past the
# paper's 0.5. Each point r<R>-<C>/ holds pruned.pare
# (pare-prune), tuned.pare (recovery training), the shard reports of
# pare-eval --shard and report.pare, their merge; summary.tsv lists every point's
# average of the paper's metrics. Every stage is a file, so an interrupted sweep
# resumes where it stopped.
#
# Recovery (TUNE) distils from the unpruned model mixed with the text's own
# tokens (pare-lora --teacher, --kd-weight 0.5), LoRA merged into tuned.pare, on
# TRAIN as raw text for EPOCHS; TUNE='cp $< $@' measures the pruned models as
# they are, and TUNE='pare-lora -q -m $< --data ALPACA --merge -o $@' recovers
# on Alpaca records as the paper did.
PARE_DATA ?= ../shared/data
MODEL     ?= $(PARE_DATA)/models/stories260K/stories260K.bin
TOKENIZER ?= $(PARE_DATA)/models/stories260K/tok512.bin
OUT       ?= sweep
RATIOS    ?= 0.2 0.5 0.7
CRITERIA  ?= element1 element2 l2 random
CALIB     ?= $(PARE_DATA)/text/tinystories/tinystories_train_sample.txt
TASKS     ?= all
LIMIT     ?=
SHARDS    ?= 1
TRAIN     ?= $(CALIB)
EPOCHS    ?= 1
TUNE      ?= pare-lora -q -m $< --teacher $(MODEL) --tokenizer $(TOKENIZER) --kd-weight 0.5 \
             --data $(TRAIN) --text --cutoff 128 --epochs $(EPOCHS) --merge -o $@
# one thread per job: make -j runs the jobs side by side
export PARE_THREADS ?= 1

EVAL_OPTS = --data-dir $(PARE_DATA) --tasks $(TASKS) $(if $(LIMIT),--limit $(LIMIT))
SHARD_IDS = $(shell seq 0 $$(($(SHARDS) - 1)))
POINTS    = $(foreach r,$(RATIOS),$(foreach c,$(CRITERIA),r$(r)-$(c)))

.PHONY: all
.SECONDARY:
all: $(OUT)/summary.tsv

$(OUT)/groups.pare:
	@mkdir -p $(OUT)
	pare-discover -m $(MODEL) -o $@

$(OUT)/scores.pare: $(OUT)/groups.pare
	pare-score -q -m $(MODEL) --tokenizer $(TOKENIZER) --calib $(CALIB) -o $@ $<

# point(ratio, criterion)
define point
$(OUT)/r$(1)-$(2)/pruned.pare: $(OUT)/scores.pare
	@mkdir -p $$(@D)
	pare-prune -q -m $(MODEL) --tokenizer $(TOKENIZER) --ratio $(1) --criterion $(2) -o $$@ $$<
$(OUT)/r$(1)-$(2)/tuned.pare: $(OUT)/r$(1)-$(2)/pruned.pare
	$$(TUNE)
$(OUT)/r$(1)-$(2)/shard-%.pare: $(OUT)/r$(1)-$(2)/tuned.pare
	pare-eval -q -m $$< $(EVAL_OPTS) --shard $$*/$(SHARDS) -o $$@
$(OUT)/r$(1)-$(2)/report.pare: $(foreach i,$(SHARD_IDS),$(OUT)/r$(1)-$(2)/shard-$(i).pare)
	pare-eval -q --merge $$^ -o $$@
endef
$(foreach r,$(RATIOS),$(foreach c,$(CRITERIA),$(eval $(call point,$(r),$(c)))))

# ratio, criterion, and the average of the paper's metrics of each point
$(OUT)/summary.tsv: $(foreach p,$(POINTS),$(OUT)/$(p)/report.pare)
	@printf 'ratio\tcriterion\taverage\n' > $@.tmp
	@for p in $(POINTS); do \
	    r=$${p%%-*}; c=$${p#*-}; \
	    v=$$(pare show $(OUT)/$$p/report.pare | grep '"task":"average"' | sed 's/.*"value":\([^,}]*\).*/\1/'); \
	    printf '%s\t%s\t%s\n' "$${r#r}" "$$c" "$$v" >> $@.tmp; \
	done
	@mv $@.tmp $@
	@cat $@
