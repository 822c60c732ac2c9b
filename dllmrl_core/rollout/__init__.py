"""Sample: prompt batches for training and the method's rollouts of them.

    prompts.py   PromptStream (a seeded, resumable walk over the training examples), group_prompts
    generate.py  generate_rollouts (sample, record what the method needs, branch) and
                 batch_generator (the RNG of one rollout chunk)
"""
