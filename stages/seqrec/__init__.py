"""Stage 1: LLaRA's sequential recommenders (SASRec, GRU4Rec, Caser, MoRec).

Four stages live here, each a module named like the stage with ``NAME``, a config and ``run``:

- ``stages.seqrec.text_embeddings`` (``text-embeddings``): MiniLM title vectors for MoRec;
- ``stages.seqrec.pretrain`` (``pretrain``): train + evaluate one recommender;
- ``stages.seqrec.import_sr`` (``import-sr``): a released LLaRA SASRec checkpoint, read with the
  restricted unpickler of ``stages.seqrec.checkpoint``, as a pretrain-like artifact;
- ``stages.seqrec.embeddings`` (``embeddings``): the frozen item-embedding table the LLM reads.

Their configs are in ``stages.seqrec.config``, which imports no torch, and this package imports
nothing, so building a config never loads torch.
``stages.seqrec.table.run_table`` trains models x seeds and writes the comparison table;
``stages.seqrec.sweep.run_sweep`` chooses hyperparameters for it on validation only.
"""
