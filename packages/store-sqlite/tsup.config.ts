// The shared one-entry package build: see scripts/tsupPackage.ts.
export { default } from '../../scripts/tsupPackage';
