import { MemoryStore } from '@belfry/core';
import { runStoreConformance } from '@belfry/testing';

runStoreConformance(() => new MemoryStore(), { name: 'MemoryStore conformance' });
