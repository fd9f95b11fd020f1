# iterative.mk - LLM-Pruner's iterative pruning (iterative_steps) as a pipeline:
# STEPS rounds of discover -> score -> prune, each round scoring the model the
# previous round left and removing the same fraction of its parameters, so that
# the last round's model has TARGET of the original parameters removed; beside
# it the one-shot prune of the same size, and a table of both models' perplexity.
#
#   make -f examples/iterative.mk STEPS=4 TARGET=0.2 CRITERION=element1
#
# Every stage is a file (OUT/step-K/{groups,scores,pruned}.pare, OUT/oneshot/...),
# so make caches them: changing STEPS or CRITERION reruns only what changed, and
# an interrupted run resumes. The schedule is linear in parameters, as
# LLM-Pruner's iterative_steps is in its ratio: round K leaves K/STEPS of the
# way to TARGET, measured from the model it starts from, so that one round's
# rounding up to whole units is taken back by the next and the last round ends
# where the one-shot prune does. CALIB and HELDOUT should be disjoint:
# by default the first 1990 lines of the TinyStories sample and the last 511.
# Perplexity: the first LIMIT windows of 128 tokens of each text (160: all of
# the held-out text, 20K tokens of WikiText-2's test split).
PARE_DATA ?= ../shared/data
MODEL     ?= $(PARE_DATA)/models/stories260K/stories260K.bin
TOKENIZER ?= $(PARE_DATA)/models/stories260K/tok512.bin
STORIES   ?= $(PARE_DATA)/text/tinystories/tinystories_train_sample.txt
WIKI      ?= $(PARE_DATA)/eval/wikitext-2-raw/wiki.test.raw
OUT       ?= iterative
STEPS     ?= 4
TARGET    ?= 0.2
CRITERION ?= element1
SELECT    ?= local
PRUNE     ?= --criterion $(CRITERION) --select $(SELECT)
LIMIT     ?= 160

# the parameters of a model: a dry run that removes nothing
PARAMS = sed -n 's/^parameters: \([0-9]*\) .*/\1/p'
LAST    := $(OUT)/step-$(STEPS)/pruned.pare
CALIB   := $(OUT)/calib.txt
HELDOUT := $(OUT)/heldout.txt

.PHONY: all
.SECONDARY:
all: $(OUT)/summary.tsv

$(CALIB):
	@mkdir -p $(@D)
	head -n 1990 $(STORIES) > $@
$(HELDOUT):
	@mkdir -p $(@D)
	tail -n +1992 $(STORIES) > $@

# the model round K starts from: the original, then round K-1's
$(OUT)/step-0/pruned.pare:
	@mkdir -p $(@D)
	pare convert -m $(MODEL) --tokenizer $(TOKENIZER) -o $@

# round(K, K-1)
define round
$(OUT)/step-$(1)/groups.pare: $(OUT)/step-$(2)/pruned.pare
	@mkdir -p $$(@D)
	pare-discover -q -m $$< -o $$@
$(OUT)/step-$(1)/scores.pare: $(OUT)/step-$(1)/groups.pare $(CALIB)
	pare-score -q -m $(OUT)/step-$(2)/pruned.pare --calib $(CALIB) -o $$@ $$<
$(OUT)/step-$(1)/pruned.pare: $(OUT)/step-$(1)/scores.pare $(OUT)/step-1/groups.pare
	base=$$$$(pare-prune -m $(OUT)/step-0/pruned.pare --ratio 0 --dry-run $(OUT)/step-1/groups.pare | $(PARAMS)); \
	cur=$$$$(pare-prune -m $(OUT)/step-$(2)/pruned.pare --ratio 0 --dry-run $(OUT)/step-$(1)/groups.pare | $(PARAMS)); \
	p=$$$$(awk -v b=$$$$base -v c=$$$$cur 'BEGIN { p = 1 - b * (1 - $(TARGET) * $(1) / $(STEPS)) / c; printf "%.6f", (p > 0 ? p : 0) }'); \
	pare-prune -q -m $(OUT)/step-$(2)/pruned.pare --target-params $$$$p $(PRUNE) -o $$@ $$<
endef
$(foreach k,$(shell seq 1 $(STEPS)),$(eval $(call round,$(k),$(shell echo $$(($(k) - 1))))))

# one shot: the same criterion and selection, TARGET at once
$(OUT)/oneshot/scores.pare: $(OUT)/step-1/groups.pare $(CALIB)
	@mkdir -p $(@D)
	pare-score -q -m $(OUT)/step-0/pruned.pare --calib $(CALIB) -o $@ $<
$(OUT)/oneshot/pruned.pare: $(OUT)/oneshot/scores.pare
	pare-prune -q -m $(OUT)/step-0/pruned.pare --target-params $(TARGET) $(PRUNE) -o $@ $<

$(OUT)/%/report.pare: $(OUT)/%/pruned.pare $(HELDOUT)
	pare-eval -q -m $< --ppl $(WIKI) --limit $(LIMIT) --ppl $(HELDOUT) -o $@

# model, parameters, WikiText-2 and held-out TinyStories perplexity
$(OUT)/summary.tsv: $(OUT)/step-0/report.pare $(OUT)/oneshot/report.pare \
                    $(foreach k,$(shell seq 1 $(STEPS)),$(OUT)/step-$(k)/report.pare)
	@printf 'model\tparams\twikitext2\theldout\n' > $@.tmp
	@for r in $^; do \
	    name=$$(basename $$(dirname $$r)); \
	    params=$$(pare show $$(dirname $$r)/pruned.pare | head -1 | \
	        sed -n 's/.*"params_after":\([0-9]*\).*/\1/p'); \
	    ppl=$$(pare show $$r | grep '"metric":"ppl"' | sed 's/.*"value":\([0-9.e+-]*\).*/\1/' | tr '\n' '\t'); \
	    printf '%s\t%s\t%s\n' "$$name" "$${params:-base}" "$$ppl" >> $@.tmp; \
	done
	@mv $@.tmp $@
	@cat $@
