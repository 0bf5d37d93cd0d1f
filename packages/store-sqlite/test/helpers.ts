import { StoreError } from '@belfry/core';
import { expect } from 'vitest';

/** The StoreError `fn` throws (the test fails if it throws anything else, or nothing). */
export function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError');
}
